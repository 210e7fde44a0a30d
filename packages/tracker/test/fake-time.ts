import type { TrackerTimers } from "../src/index.js";

interface FakeInterval {
  readonly fn: () => void;
  readonly periodMs: number;
  dueMs: number;
}

/**
 * A hand-made clock and interval timers: time moves only on `tick()` or `set()`, and `tick()`
 * fires every interval that falls due, in time order. Tests never sleep.
 */
export class FakeTime {
  #nowMs: number;
  #nextId = 1;
  readonly #intervals = new Map<number, FakeInterval>();
  /** The period of every interval ever set, in order. */
  readonly periods: number[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  /** The clock to inject as `now`. */
  readonly now = (): number => this.#nowMs;

  /** The timers to inject as `timers`. */
  readonly timers: TrackerTimers = {
    setInterval: (fn, ms) => {
      const id = this.#nextId++;
      this.periods.push(ms);
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

  /** Sets the clock, firing nothing; it may go backwards. */
  set(ms: number): void {
    this.#nowMs = ms;
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

/** A seed source that hands out `seeds` in order, then counts up from the last. */
export function seedSequence(...seeds: number[]): () => number {
  let i = 0;
  return () => {
    const seed = seeds[Math.min(i, seeds.length - 1)] as number;
    const value = i < seeds.length ? seed : seed + i - seeds.length + 1;
    i++;
    return value >>> 0;
  };
}

/** A random source that returns `value` and counts its calls. */
export function countingRandom(value = 0.5): { random: () => number; readonly calls: number } {
  const state = {
    calls: 0,
    random: () => {
      state.calls++;
      return value;
    },
  };
  return state;
}
