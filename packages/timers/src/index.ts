/**
 * `@fair/timers`: the one timer interface every `@fair` package takes, and
 * the platform's timers as its default.
 *
 * @example
 * ```ts
 * import { systemTimers, type Timers } from "@fair/timers";
 *
 * const timers: Timers = systemTimers; // or a test's fake timers
 * const handle = timers.setInterval(() => sweep(), 30_000);
 * timers.clearInterval(handle);
 * ```
 *
 * @packageDocumentation
 */

export type { Timers } from "./timers.js";
export { systemTimers } from "./timers.js";
