/**
 * The timer functions a `@fair` package schedules with: one-shot timers
 * (the client's flushes, backoff and timeouts) and intervals (the store's
 * eviction, the hub's flushes, the tracker's rotation). Every package takes
 * this one type, so one object drives them all: `globalThis` fits, and so
 * does a test's fake clock.
 */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a handle returned by `setTimeout`; a handle already fired or cleared is ignored. */
  clearTimeout(handle: unknown): void;
  /** Calls `fn` every `ms` milliseconds until cleared; returns a handle for `clearInterval`. */
  setInterval(fn: () => void, ms: number): unknown;
  /** Cancels a handle returned by `setInterval`. */
  clearInterval(handle: unknown): void;
}

/**
 * The platform's timers, each `unref()`ed: a package's own upkeep (a flush,
 * an eviction sweep, a reconnect delay) never keeps a process alive on its
 * own; the sockets and listeners that use it do. The default of every
 * `timers` option.
 */
export const systemTimers: Timers = Object.freeze({
  setTimeout(fn: () => void, ms: number): unknown {
    return setTimeout(fn, ms).unref();
  },
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  setInterval(fn: () => void, ms: number): unknown {
    return setInterval(fn, ms).unref();
  },
  clearInterval(handle: unknown): void {
    clearInterval(handle as ReturnType<typeof setInterval>);
  },
});
