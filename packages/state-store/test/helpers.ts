// Fixtures for the in-memory store's own tests: the conformance suite's
// seed, clock and update builder, plus timers that fire only when told and
// a store wired to both.

import { ManualClock, windowMs } from "../src/conformance/fixtures.js";
import type { InMemoryStoreOptions, StoreTimers } from "../src/index.js";
import { InMemoryStore } from "../src/index.js";

export {
  type DeltaTuple,
  ManualClock,
  seed0,
  sorted,
  t0,
  update,
  windowMs,
} from "../src/conformance/fixtures.js";

/** Timers that record what is scheduled and fire only on `fire()`. */
export class FakeTimers implements StoreTimers {
  readonly intervals = new Map<number, { fn: () => void; ms: number }>();
  #next = 1;

  setInterval(fn: () => void, ms: number): unknown {
    const handle = this.#next++;
    this.intervals.set(handle, { fn, ms });
    return handle;
  }

  clearInterval(handle: unknown): void {
    this.intervals.delete(handle as number);
  }

  /** Runs every scheduled interval once. */
  fire(): void {
    for (const { fn } of [...this.intervals.values()]) fn();
  }
}

/** A store on a manual clock and fake timers, with the default window. */
export function makeStore(options: Partial<InMemoryStoreOptions> = {}) {
  const clock = new ManualClock();
  const timers = new FakeTimers();
  const store = new InMemoryStore({ windowMs, now: clock.now, timers, ...options });
  return { store, clock, timers };
}
