// Fixtures for the in-memory store's own tests: a window-aligned seed, a
// clock that moves only when told, an update builder, timers that fire only
// when told, and a store wired to them. (The Store contract's own suite,
// with fixtures of its own, is @fair/state-store-conformance.)

import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import type { BucketState, InMemoryStoreOptions, Timers } from "../src/index.js";
import { InMemoryStore } from "../src/index.js";

/** The window of every store made here: 5 minutes. */
export const windowMs = 300_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const seed0 = 1_764_136_800_000n;
/** One second into `seed0`'s window: where every clock starts. */
export const t0 = Number(seed0) + 1_000;

/** `[rowId, colId, deltaProb, lastUpdateTimeMs]` */
export type DeltaTuple = readonly [number, number, number, number];

/** A `DeltaUpdate` from tuples. */
export function update(seed: bigint, deltas: readonly DeltaTuple[]): DeltaUpdate {
  return create(DeltaUpdateSchema, {
    seed,
    deltas: deltas.map(([row, col, deltaProb, ts]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      deltaProb,
      lastUpdateTimeMs: BigInt(ts),
    })),
  });
}

/** A clock standing at `t0` until moved. */
export class ManualClock {
  nowMs = t0;
  readonly now = (): number => this.nowMs;
}

/** Buckets in (row, col) order, for comparing sets. */
export function sorted(buckets: readonly BucketState[]): BucketState[] {
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

/** Intervals that record what is scheduled and fire only on `fire()`; the store sets no timeouts. */
export class FakeTimers implements Timers {
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

  setTimeout(): unknown {
    throw new Error("the in-memory store sets no timeouts");
  }

  clearTimeout(): void {}

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
