/**
 * Test fixtures shared by the workspace's packages. Private: never
 * published, only ever a devDependency.
 */
export type { OneShotTimers, Timers } from "./fake-time.js";
export { FakeTime } from "./fake-time.js";
