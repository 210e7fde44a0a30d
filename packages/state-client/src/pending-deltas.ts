import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";

interface PendingBucket {
  readonly rowId: number;
  readonly colId: number;
  /** The coalesced adjustment, as of `timeMs`. */
  sum: number;
  timeMs: number;
}

/** Row ids the client accepts: FAIR levels, a handful in practice. */
const MAX_ROW_ID = 2 ** 16;
/** Column ids the client accepts (the wire allows uint64; servers bound it far lower). */
const MAX_COL_ID = 2 ** 32;

/**
 * Whether a bucket's ids and time are ones the client sends: integer ids
 * below {@link MAX_ROW_ID} and {@link MAX_COL_ID}, and a time in whole Unix
 * ms, ≥ 0 and exact (≤ 2^53 − 1). Adjustments and offered buckets alike.
 */
export function isSendable(rowId: number, colId: number, timeMs: number): boolean {
  return (
    Number.isInteger(rowId) &&
    rowId >= 0 &&
    rowId < MAX_ROW_ID &&
    Number.isInteger(colId) &&
    colId >= 0 &&
    colId < MAX_COL_ID &&
    Number.isSafeInteger(timeMs) &&
    timeMs >= 0
  );
}

/**
 * Per seed, a map per row keyed by column: small integer keys, which V8's
 * Map hashes fastest. A combined `row · 2^32 + col` key is a heap number;
 * the hub's merge benchmark measured such keys about 3× slower.
 */
type SeedBuckets = Map<number, Map<number, PendingBucket>>;

/**
 * Adjustments not yet sent, coalesced per bucket: several adjustments `aⱼ`
 * at times `tⱼ` become `Σ aⱼ·e^(−λ(t_max − tⱼ)/1000)` stamped `t_max`
 * (docs/design.md §3), which is exact for the linear part of the server's rule.
 * Bounded by distinct buckets, never by adjustment count, and held through an outage of any
 * length: only seeds too old to be live are forgotten ({@link PendingDeltas.dropSeedsBefore}).
 */
export class PendingDeltas {
  readonly #bySeed = new Map<bigint, SeedBuckets>();
  readonly #lambdaPerMs: number;
  readonly #maxBuckets: number;
  #size = 0;

  constructor(decayRatePerSecond: number, maxBuckets: number) {
    this.#lambdaPerMs = decayRatePerSecond / 1000;
    this.#maxBuckets = maxBuckets;
  }

  /** Distinct buckets waiting to be sent. */
  get size(): number {
    return this.#size;
  }

  /**
   * Coalesces one adjustment (already validated by the caller). Returns
   * false when it names a new bucket and the set is full: it is then not
   * held, and the caller counts it.
   */
  add(seed: bigint, rowId: number, colId: number, deltaProb: number, timeMs: number): boolean {
    let rows = this.#bySeed.get(seed);
    let buckets = rows?.get(rowId);
    const held = buckets?.get(colId);
    if (held !== undefined) {
      if (timeMs >= held.timeMs) {
        held.sum = held.sum * Math.exp(-this.#lambdaPerMs * (timeMs - held.timeMs)) + deltaProb;
        held.timeMs = timeMs;
      } else {
        held.sum += deltaProb * Math.exp(-this.#lambdaPerMs * (held.timeMs - timeMs));
      }
      return true;
    }
    if (this.#size >= this.#maxBuckets) return false;
    if (rows === undefined) {
      rows = new Map();
      this.#bySeed.set(seed, rows);
    }
    if (buckets === undefined) {
      buckets = new Map();
      rows.set(rowId, buckets);
    }
    buckets.set(colId, { rowId, colId, sum: deltaProb, timeMs });
    this.#size++;
    return true;
  }

  /**
   * Takes everything pending as `DeltaUpdate`s of at most `maxPerMessage`
   * deltas each, and forgets it. A coalesced sum beyond ±1 is sent as ±1:
   * the server refuses larger deltas, and for an in-order delta the bucket
   * clamps to the same value either way.
   */
  drain(maxPerMessage: number): { messages: DeltaUpdate[]; deltas: number } {
    const messages: DeltaUpdate[] = [];
    const deltas = this.#size;
    for (const [seed, rows] of this.#bySeed) {
      let batch: DeltaUpdate["deltas"] = [];
      for (const bucket of buckets(rows)) {
        batch.push({
          $typeName: "fair.state.v1.BucketDelta",
          rowId: BigInt(bucket.rowId),
          colId: BigInt(bucket.colId),
          deltaProb: Math.max(-1, Math.min(1, bucket.sum)),
          lastUpdateTimeMs: BigInt(bucket.timeMs),
        });
        if (batch.length === maxPerMessage) {
          messages.push(create(DeltaUpdateSchema, { seed, deltas: batch }));
          batch = [];
        }
      }
      if (batch.length > 0) messages.push(create(DeltaUpdateSchema, { seed, deltas: batch }));
    }
    this.#bySeed.clear();
    this.#size = 0;
    return { messages, deltas };
  }

  /**
   * Forgets everything pending for seeds below `oldest` (windows no tracker decides on any
   * more, which the server would drop too). Returns how many buckets that was.
   */
  dropSeedsBefore(oldest: bigint): number {
    let dropped = 0;
    for (const [seed, rows] of this.#bySeed) {
      if (seed >= oldest) continue;
      for (const columns of rows.values()) dropped += columns.size;
      this.#bySeed.delete(seed);
    }
    this.#size -= dropped;
    return dropped;
  }

  /** The coalesced adjustment waiting for one bucket, as of its time; `undefined` if none. */
  get(
    seed: bigint,
    rowId: number,
    colId: number,
  ): { readonly sum: number; readonly timeMs: number } | undefined {
    return this.#bySeed.get(seed)?.get(rowId)?.get(colId);
  }

  /** Forgets everything pending; returns how many buckets that was. */
  clear(): number {
    const dropped = this.#size;
    this.#bySeed.clear();
    this.#size = 0;
    return dropped;
  }
}

function* buckets(rows: SeedBuckets): Generator<PendingBucket> {
  for (const columns of rows.values()) yield* columns.values();
}
