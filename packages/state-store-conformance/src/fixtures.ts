// Shared fixtures of the conformance suite: a window-aligned seed, a clock
// that moves only when told, and short ways to write updates and offers and
// check refusals.
import { create } from "@bufbuild/protobuf";
import {
  type DeltaUpdate,
  DeltaUpdateSchema,
  type StateOffer,
  StateOfferSchema,
} from "@fair/state-proto";
import { type BucketState, StoreError, type StoreErrorCode } from "@fair/state-store";
import { expect } from "vitest";

/** The window every conformance store runs with: 5 minutes. */
export const windowMs = 300_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const seed0 = 1_764_136_800_000n;
/** One second into `seed0`'s window: where every store's clock starts. */
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

/** `[rowId, colId, prob, lastUpdateTimeMs]`: one offered bucket, an absolute value. */
export type BucketTuple = readonly [number, number, number, number];

/** A `StateOffer` (learning mode) from tuples. */
export function offer(seed: bigint, buckets: readonly BucketTuple[]): StateOffer {
  return create(StateOfferSchema, {
    seed,
    buckets: buckets.map(([row, col, prob, ts]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      prob,
      lastUpdateTimeMs: BigInt(ts),
    })),
  });
}

/** A clock standing at `t0` until moved. */
export class ManualClock {
  nowMs = t0;
  readonly now = (): number => this.nowMs;
}

/** Buckets in a stable order, for comparing sets. */
export function sorted(buckets: readonly BucketState[]): BucketState[] {
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

/**
 * Expects `fn` to refuse with a `StoreError` of `code` naming `field`,
 * whether it throws at once (an in-memory store) or rejects (a remote one).
 */
export async function expectStoreError(
  fn: () => unknown,
  code: StoreErrorCode,
  field: string,
): Promise<StoreError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  const error = caught as StoreError;
  expect({ code: error.code, field: error.field }).toEqual({ code, field });
  expect(error.message).toContain(field);
  return error;
}
