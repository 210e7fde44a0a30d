import type { Timers } from "@fair/timers";

interface FakeTimer {
  readonly fn: () => void;
  /** 0 for a one-shot timer. */
  readonly periodMs: number;
  dueMs: number;
}

/**
 * A hand-made clock and timers for tests: time moves only on `tick()`, which
 * fires every timer that falls due, in time order (ties in the order they
 * were set).
 */
export class FakeTime {
  #nowMs: number;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();

  constructor(startMs = 1_764_136_800_000) {
    this.#nowMs = startMs;
  }

  /** The clock to inject as `now`. */
  readonly now = (): number => this.#nowMs;

  /** The timers to inject as every package's `timers`. */
  readonly timers: Timers = {
    setTimeout: (fn, ms) => this.#add(fn, ms, 0),
    clearTimeout: (handle) => {
      this.#timers.delete(handle as number);
    },
    setInterval: (fn, ms) => this.#add(fn, ms, Math.max(1, ms)),
    clearInterval: (handle) => {
      this.#timers.delete(handle as number);
    },
  };

  /** Timers not yet fired (one-shot) or cleared. */
  get activeTimers(): number {
    return this.#timers.size;
  }

  /** Intervals not yet cleared. */
  get activeIntervals(): number {
    let count = 0;
    for (const timer of this.#timers.values()) if (timer.periodMs > 0) count++;
    return count;
  }

  /** Milliseconds until the next timer is due, or undefined when none is set. */
  get nextDueInMs(): number | undefined {
    let next: number | undefined;
    for (const timer of this.#timers.values()) {
      if (next === undefined || timer.dueMs < next) next = timer.dueMs;
    }
    return next === undefined ? undefined : next - this.#nowMs;
  }

  /**
   * Sets the clock to `ms` and fires nothing, even timers it passes; it may
   * go backwards, as a clock that steps back does. Timers keep their due
   * times, so the next `tick()` fires any that are already due.
   */
  set(ms: number): void {
    this.#nowMs = ms;
  }

  /** Moves time forward by `ms`, firing each timer as it falls due. */
  tick(ms: number): void {
    const endMs = this.#nowMs + ms;
    for (;;) {
      let nextId: number | undefined;
      let next: FakeTimer | undefined;
      for (const [id, timer] of this.#timers) {
        if (timer.dueMs <= endMs && (next === undefined || timer.dueMs < next.dueMs)) {
          next = timer;
          nextId = id;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.#nowMs = next.dueMs;
      if (next.periodMs > 0) next.dueMs += next.periodMs;
      else this.#timers.delete(nextId);
      next.fn();
    }
    this.#nowMs = endMs;
  }

  #add(fn: () => void, ms: number, periodMs: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { fn, periodMs, dueMs: this.#nowMs + Math.max(0, ms) });
    return id;
  }
}
