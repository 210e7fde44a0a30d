import type { BucketState } from "./store.js";

// The buckets of one (namespace, seed): a Map<number, number> from key
// `row × maxCols + col` (exact below 2^53) to a slot in parallel typed-array
// columns. Measured by bench/main.ts (Node 20, 2-core EPYC): 59 bytes per
// bucket at 1M buckets (the Map ~30, the columns ~29), against 101 for a Map
// of one object per bucket; 2.3–3.2M deltas/s in batches of 100 on 3 × 1000
// keys, ~2M/s over 8 × 2^20. Both targets (≤ 120 B, ≥ 2M/s) are met, so there
// is no hand-written hash table. Interleaving the columns into one array, so
// a bucket sits in one cache line, measured no faster: the Map lookup
// dominates.
//
// Probability 0 is the default bucket. A bucket that falls to exactly 0 is
// forgotten at the end of its batch. {0, t} and the default {0, 0} are worth
// 0 at every time, and a later delta `a` at `ts` leaves both worth the same
// at every time past max(t, ts): a·e^(−λ(T−ts)) either way, since clamping
// to [0, 1] commutes with the positive decay factor. Only the stored
// timestamp differs (it may then step back, to ts). Keeping {0, t} instead
// would let every success on an idle bucket — the common outcome — take
// memory, and a client could fill rows × cols with zeros.

const initialCapacity = 16;

/** Storage and arithmetic for the buckets of one seed. */
export class SeedTable {
  readonly #slots = new Map<number, number>();
  #keys = new Float64Array(initialCapacity);
  #probs = new Float64Array(initialCapacity);
  #times = new Float64Array(initialCapacity);
  // Batch id that last touched each slot, so a batch lists a bucket once.
  #marks = new Uint32Array(initialCapacity);
  #highWater = 0;
  readonly #free: number[] = [];
  #batch = 0;
  readonly #touched: number[] = [];

  /** Buckets held; exact between batches. */
  get size(): number {
    return this.#slots.size;
  }

  /** Starts a batch: buckets touched from here on are listed once by `endBatch`. */
  beginBatch(): void {
    this.#touched.length = 0;
    this.#batch = (this.#batch + 1) >>> 0;
    if (this.#batch === 0) {
      this.#marks.fill(0);
      this.#batch = 1;
    }
  }

  /**
   * Applies delta `a` stamped `ts` to bucket `key` (docs/design.md §3), with
   * `decayPerMs` = λ / 1000. Returns false when the bucket stays default.
   */
  apply(key: number, a: number, ts: number, decayPerMs: number): boolean {
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      // Default bucket {0, 0}: every ts is in order, so prob = clamp01(a).
      if (a <= 0) return false;
      slot = this.#allocate(key);
      this.#probs[slot] = a;
      this.#times[slot] = ts;
    } else {
      const probs = this.#probs;
      const times = this.#times;
      const p = probs[slot] as number;
      const t = times[slot] as number;
      if (p === 0) {
        // Fell to 0 earlier in this batch: default again, as if forgotten.
        probs[slot] = Math.max(0, a);
        times[slot] = ts;
      } else if (ts >= t) {
        const decayed = ts === t || decayPerMs === 0 ? p : p * Math.exp(-decayPerMs * (ts - t));
        probs[slot] = clamp01(decayed + a);
        times[slot] = ts;
      } else {
        const late = decayPerMs === 0 ? a : a * Math.exp(-decayPerMs * (t - ts));
        probs[slot] = clamp01(p + late);
      }
    }
    if (this.#marks[slot] !== this.#batch) {
      this.#marks[slot] = this.#batch;
      this.#touched.push(slot);
    }
    return true;
  }

  /**
   * How many buckets the table would hold after `beginBatch`, `apply` of
   * the first `count` deltas (timestamps past `latest` clamped to it) and
   * `endBatch` — changing nothing. The same arithmetic as `apply`, on a
   * scratch copy of the touched buckets (a property test holds them equal),
   * so a store can refuse a batch over a size limit before applying any of
   * it. Only the limit check calls it, and only near the limit.
   */
  sizeAfter(
    keys: Float64Array,
    deltas: Float64Array,
    times: Float64Array,
    count: number,
    latest: number,
    decayPerMs: number,
  ): number {
    // Per touched key: [prob, time, held before the batch (1/0), allocated (1/0)].
    const scratch = new Map<number, [number, number, number, number]>();
    for (let i = 0; i < count; i++) {
      const key = keys[i] as number;
      const a = deltas[i] as number;
      const ts = Math.min(times[i] as number, latest);
      let bucket = scratch.get(key);
      if (bucket === undefined) {
        const slot = this.#slots.get(key);
        bucket =
          slot === undefined
            ? [0, 0, 0, 0]
            : [this.#probs[slot] as number, this.#times[slot] as number, 1, 1];
        scratch.set(key, bucket);
      }
      if (bucket[3] === 0) {
        if (a <= 0) continue;
        bucket[0] = a;
        bucket[1] = ts;
        bucket[3] = 1;
        continue;
      }
      const p = bucket[0];
      const t = bucket[1];
      if (p === 0) {
        bucket[0] = Math.max(0, a);
        bucket[1] = ts;
      } else if (ts >= t) {
        const decayed = ts === t || decayPerMs === 0 ? p : p * Math.exp(-decayPerMs * (ts - t));
        bucket[0] = clamp01(decayed + a);
        bucket[1] = ts;
      } else {
        const late = decayPerMs === 0 ? a : a * Math.exp(-decayPerMs * (t - ts));
        bucket[0] = clamp01(p + late);
      }
    }
    let size = this.#slots.size;
    for (const [prob, , held, allocated] of scratch.values()) {
      if (held === 1 && prob === 0) size--;
      else if (held === 0 && allocated === 1 && prob > 0) size++;
    }
    return size;
  }

  /** Ends a batch: the buckets it changed, latest values; zeros are forgotten. */
  endBatch(maxCols: number): BucketState[] {
    const touched = this.#touched;
    const out: BucketState[] = new Array(touched.length);
    for (let i = 0; i < touched.length; i++) {
      const slot = touched[i] as number;
      const prob = this.#probs[slot] as number;
      out[i] = this.#state(slot, maxCols);
      if (prob === 0) this.#release(slot);
    }
    touched.length = 0;
    return out;
  }

  /** Every bucket held. */
  buckets(maxCols: number): BucketState[] {
    const out: BucketState[] = new Array(this.#slots.size);
    const probs = this.#probs;
    let i = 0;
    for (let slot = 0; slot < this.#highWater; slot++) {
      if ((probs[slot] as number) > 0) out[i++] = this.#state(slot, maxCols);
    }
    return out;
  }

  /** Calls `fn` with every bucket's key, probability and time. */
  forEach(fn: (key: number, prob: number, timeMs: number) => void): void {
    const probs = this.#probs;
    for (let slot = 0; slot < this.#highWater; slot++) {
      const prob = probs[slot] as number;
      if (prob > 0) fn(this.#keys[slot] as number, prob, this.#times[slot] as number);
    }
  }

  /** Stores a bucket as is, for restoring a snapshot; the key must be new. */
  load(key: number, prob: number, timeMs: number): void {
    if (prob === 0) return;
    const slot = this.#allocate(key);
    this.#probs[slot] = prob;
    this.#times[slot] = timeMs;
  }

  /** Whether `key` is held. */
  has(key: number): boolean {
    return this.#slots.has(key);
  }

  #state(slot: number, maxCols: number): BucketState {
    const key = this.#keys[slot] as number;
    const rowId = Math.floor(key / maxCols);
    return {
      rowId,
      colId: key - rowId * maxCols,
      prob: this.#probs[slot] as number,
      lastUpdateTimeMs: this.#times[slot] as number,
    };
  }

  #allocate(key: number): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      if (this.#highWater === this.#probs.length) this.#grow();
      slot = this.#highWater++;
    }
    this.#slots.set(key, slot);
    this.#keys[slot] = key;
    return slot;
  }

  #release(slot: number): void {
    this.#slots.delete(this.#keys[slot] as number);
    this.#free.push(slot);
  }

  #grow(): void {
    const capacity = this.#probs.length * 2;
    this.#keys = copyInto(new Float64Array(capacity), this.#keys);
    this.#probs = copyInto(new Float64Array(capacity), this.#probs);
    this.#times = copyInto(new Float64Array(capacity), this.#times);
    this.#marks = copyInto(new Uint32Array(capacity), this.#marks);
  }
}

function copyInto<T extends Float64Array | Uint32Array>(target: T, source: T): T {
  target.set(source);
  return target;
}

// Math.max(0, −0) is +0, so a bucket never holds a negative zero.
function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
