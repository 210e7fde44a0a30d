/** The timer functions every package injects; `globalThis` fits too. */
export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

interface FakeInterval {
  readonly fn: () => void;
  readonly periodMs: number;
  dueMs: number;
}

/**
 * A hand-made clock and interval timers for tests: time moves only on
 * `tick()`, which fires every interval that falls due, in time order.
 */
export class FakeTime {
  #nowMs: number;
  #nextId = 1;
  readonly #intervals = new Map<number, FakeInterval>();

  constructor(startMs = 1_764_136_800_000) {
    this.#nowMs = startMs;
  }

  /** The clock to inject as `now`. */
  readonly now = (): number => this.#nowMs;

  /** The timers to inject as `timers`. */
  readonly timers: Timers = {
    setInterval: (fn, ms) => {
      const id = this.#nextId++;
      this.#intervals.set(id, { fn, periodMs: ms, dueMs: this.#nowMs + ms });
      return id;
    },
    clearInterval: (handle) => {
      this.#intervals.delete(handle as number);
    },
  };

  /** Intervals not yet cleared. */
  get activeIntervals(): number {
    return this.#intervals.size;
  }

  /** Moves time forward by `ms`, firing each interval as it falls due. */
  tick(ms: number): void {
    const endMs = this.#nowMs + ms;
    for (;;) {
      let next: FakeInterval | undefined;
      for (const interval of this.#intervals.values()) {
        if (interval.dueMs <= endMs && (next === undefined || interval.dueMs < next.dueMs)) {
          next = interval;
        }
      }
      if (next === undefined) break;
      this.#nowMs = next.dueMs;
      next.dueMs += next.periodMs;
      next.fn();
    }
    this.#nowMs = endMs;
  }
}
