import {
  FrozenColumns,
  type FrozenOwner,
  pageBits,
  pageMask,
  pageSlots,
} from "./frozen-columns.js";
import { SlotIndex } from "./slot-index.js";
import type { BucketState } from "./store.js";

// The buckets of one (namespace, seed): a SlotIndex from key
// `row × maxCols + col` (exact below 2^53) to a slot, and per slot three
// numbers — key, probability, time — side by side in a Float64Array.
// Nothing is allocated per bucket on the JavaScript heap, so the garbage
// collector has nothing to trace however many buckets a seed holds
// (slot-index.ts says why a Map of 2^22 keys was not good enough). Measured
// by bench/main.ts and bench/memory.ts: see the README.
//
// The slots are in pages of 8 192 (the first page grows from 4 slots by
// doubling until it is full), not in one array: one array doubles by
// copying all of itself, which at 2^21 slots (112 MiB of columns) blocked
// for ~32 ms on a 2-core Xeon. A full page stays where it is, so a snapshot
// reads the pages in place (frozen-columns.ts). Small typed arrays are
// ~270 B each whatever their length, so a seed of one bucket has two of
// them (its page and its marks) and its index two more.
//
// Probability 0 is the default bucket. A bucket that falls to exactly 0 is
// forgotten at the end of its batch. {0, t} and the default {0, 0} are worth
// 0 at every time, and a later delta `a` at `ts` leaves both worth the same
// at every time past max(t, ts): a·e^(−λ(T−ts)) either way, since clamping
// to [0, 1] commutes with the positive decay factor. Only the stored
// timestamp differs (it may then step back, to ts). Keeping {0, t} instead
// would let every success on an idle bucket — the common outcome — take
// memory, and a client could fill rows × cols with zeros.
//
// Slots are written only by `apply` and `merge` (between `beginBatch` and `endBatch`)
// and `load`, each only after the snapshots in progress have been handed
// what it held (`#beforeWrite`).

const initialCapacity = 4;
/** A slot's numbers, at `3 × (slot & pageMask)` of its page, in this order. */
const keyCell = 0;
const probCell = 1;
const timeCell = 2;

/** Storage and arithmetic for the buckets of one seed. */
export class SeedTable {
  readonly #slots = new SlotIndex();
  /** Slot s is cells 3i…3i+2 of page s >>> pageBits, i = s & pageMask. */
  readonly #pages: Float64Array[] = [new Float64Array(3 * initialCapacity)];
  /** Batch id that last touched each slot, so a batch lists a bucket once. */
  readonly #marks: Uint32Array[] = [new Uint32Array(initialCapacity)];
  #highWater = 0;
  readonly #free: number[] = [];
  #batch = 0;
  readonly #touched: number[] = [];
  /** Snapshots in progress; `undefined` while none runs. */
  #frozen: FrozenColumns[] | undefined;
  #owner: FrozenOwner | undefined;

  /** Buckets held; exact between batches. */
  get size(): number {
    return this.#slots.size;
  }

  /** Starts a batch: buckets touched from here on are listed once by `endBatch`. */
  beginBatch(): void {
    this.#touched.length = 0;
    this.#batch = (this.#batch + 1) >>> 0;
    if (this.#batch === 0) {
      for (const marks of this.#marks) marks.fill(0);
      this.#batch = 1;
    }
  }

  /**
   * Applies delta `a` stamped `ts` to the bucket of key `bucket`
   * (docs/design.md §3), with `decayPerMs` = λ / 1000. Returns false when
   * the bucket stays default.
   */
  apply(bucket: number, a: number, ts: number, decayPerMs: number): boolean {
    let slot = this.#slots.get(bucket);
    const isNew = slot === undefined;
    if (slot === undefined) {
      // Default bucket {0, 0}: every ts is in order, so prob = clamp01(a).
      if (a <= 0) return false;
      slot = this.#allocate(bucket);
    } else if (this.#frozen !== undefined) {
      this.#beforeWrite(slot);
    }
    const cells = this.#pages[slot >>> pageBits] as Float64Array;
    const at = 3 * (slot & pageMask);
    if (isNew) {
      cells[at + probCell] = a;
      cells[at + timeCell] = ts;
    } else {
      const p = cells[at + probCell] as number;
      const t = cells[at + timeCell] as number;
      if (p === 0) {
        // Fell to 0 earlier in this batch: default again, as if forgotten.
        cells[at + probCell] = Math.max(0, a);
        cells[at + timeCell] = ts;
      } else if (ts >= t) {
        const decayed = ts === t || decayPerMs === 0 ? p : p * Math.exp(-decayPerMs * (ts - t));
        cells[at + probCell] = clamp01(decayed + a);
        cells[at + timeCell] = ts;
      } else {
        const late = decayPerMs === 0 ? a : a * Math.exp(-decayPerMs * (t - ts));
        cells[at + probCell] = clamp01(p + late);
      }
    }
    this.#touch(slot);
    return true;
  }

  /**
   * Merges the offered value `q` as of `u` into the bucket of key `bucket`
   * (learning mode): the stored `{p, t}` and the offer are both decayed to
   * `T = max(t, u)` and the larger is kept, stamped `T`. A bucket the offer
   * does not raise is left exactly as it was, so offering the same value
   * again changes nothing. Returns whether the bucket was raised.
   */
  merge(bucket: number, q: number, u: number, decayPerMs: number): boolean {
    let slot = this.#slots.get(bucket);
    if (slot === undefined) {
      if (q <= 0) return false;
      slot = this.#allocate(bucket);
    } else {
      const p = this.#cell(slot, probCell);
      const t = this.#cell(slot, timeCell);
      const at = Math.max(t, u);
      const stored = at === t || decayPerMs === 0 ? p : p * Math.exp(-decayPerMs * (at - t));
      const offered = at === u || decayPerMs === 0 ? q : q * Math.exp(-decayPerMs * (at - u));
      if (!(offered > stored)) return false;
      if (this.#frozen !== undefined) this.#beforeWrite(slot);
      q = offered;
      u = at;
    }
    const cells = this.#pages[slot >>> pageBits] as Float64Array;
    const at = 3 * (slot & pageMask);
    cells[at + probCell] = q;
    cells[at + timeCell] = u;
    this.#touch(slot);
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
            : [this.#cell(slot, probCell), this.#cell(slot, timeCell), 1, 1];
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
      out[i] = this.#state(slot, maxCols);
      if (this.#cell(slot, probCell) === 0) this.#release(slot);
    }
    touched.length = 0;
    return out;
  }

  /** Every bucket held. */
  buckets(maxCols: number): BucketState[] {
    const out: BucketState[] = new Array(this.#slots.size);
    let n = 0;
    for (let slot = 0; slot < this.#highWater; slot++) {
      if (this.#cell(slot, probCell) > 0) out[n++] = this.#state(slot, maxCols);
    }
    return out;
  }

  /**
   * Up to `limit` buckets held, from slot `from` on, and the slot the next
   * page starts at (`undefined` after the last). A bucket keeps its slot
   * while it is held, so one held throughout a paged read is listed once.
   */
  page(
    from: number,
    limit: number,
    maxCols: number,
  ): { buckets: BucketState[]; next: number | undefined } {
    const buckets: BucketState[] = [];
    let slot = from;
    for (; slot < this.#highWater && buckets.length < limit; slot++) {
      if (this.#cell(slot, probCell) > 0) buckets.push(this.#state(slot, maxCols));
    }
    return { buckets, next: slot < this.#highWater ? slot : undefined };
  }

  /** Stores a bucket as is, for restoring a snapshot; the key must be new. */
  load(bucket: number, probability: number, timeMs: number): void {
    if (probability === 0) return;
    const slot = this.#allocate(bucket);
    const cells = this.#pages[slot >>> pageBits] as Float64Array;
    const at = 3 * (slot & pageMask);
    cells[at + probCell] = probability;
    cells[at + timeCell] = timeMs;
  }

  /** Whether `bucket` (a key) is held. */
  has(bucket: number): boolean {
    return this.#slots.has(bucket);
  }

  /**
   * The slots as they stand now, for a snapshot: read through the frozen
   * columns, they stay as they are however the table changes, until
   * `FrozenColumns.close()`.
   */
  freeze(): FrozenColumns {
    this.#owner ??= {
      page: (page) => this.#pages[page] as Float64Array,
      close: (frozen) => {
        const rest = this.#frozen?.filter((other) => other !== frozen) ?? [];
        this.#frozen = rest.length > 0 ? rest : undefined;
      },
    };
    const frozen = new FrozenColumns(this.#highWater, this.#owner);
    this.#frozen ??= [];
    this.#frozen.push(frozen);
    return frozen;
  }

  /** Lists `slot` once in this batch's `endBatch`. */
  #touch(slot: number): void {
    const marks = this.#marks[slot >>> pageBits] as Uint32Array;
    const i = slot & pageMask;
    if (marks[i] !== this.#batch) {
      marks[i] = this.#batch;
      this.#touched.push(slot);
    }
  }

  /** Hands what `slot` holds to every snapshot in progress, before it is written. */
  #beforeWrite(slot: number): void {
    const cells = this.#pages[slot >>> pageBits] as Float64Array;
    const at = 3 * (slot & pageMask);
    const k = cells[at + keyCell] as number;
    const p = cells[at + probCell] as number;
    const t = cells[at + timeCell] as number;
    for (const frozen of this.#frozen as FrozenColumns[]) frozen.beforeWrite(slot, k, p, t);
  }

  #cell(slot: number, which: number): number {
    return (this.#pages[slot >>> pageBits] as Float64Array)[
      3 * (slot & pageMask) + which
    ] as number;
  }

  #state(slot: number, maxCols: number): BucketState {
    const cells = this.#pages[slot >>> pageBits] as Float64Array;
    const at = 3 * (slot & pageMask);
    const k = cells[at + keyCell] as number;
    const rowId = Math.floor(k / maxCols);
    return {
      rowId,
      colId: k - rowId * maxCols,
      prob: cells[at + probCell] as number,
      lastUpdateTimeMs: cells[at + timeCell] as number,
    };
  }

  #allocate(bucket: number): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#highWater;
      if (slot === this.#capacity()) this.#grow();
      this.#highWater++;
    }
    if (this.#frozen !== undefined) this.#beforeWrite(slot);
    this.#slots.add(bucket, slot);
    (this.#pages[slot >>> pageBits] as Float64Array)[3 * (slot & pageMask) + keyCell] = bucket;
    return slot;
  }

  #release(slot: number): void {
    this.#slots.delete(this.#cell(slot, keyCell));
    this.#free.push(slot);
  }

  #capacity(): number {
    const pages = this.#pages.length;
    return pages === 1 ? (this.#marks[0] as Uint32Array).length : pages * pageSlots;
  }

  // The first page doubles until it is full; after that a page is added.
  #grow(): void {
    const first = this.#marks[0] as Uint32Array;
    if (this.#pages.length === 1 && first.length < pageSlots) {
      const capacity = first.length * 2;
      const cells = new Float64Array(3 * capacity);
      cells.set(this.#pages[0] as Float64Array);
      this.#pages[0] = cells;
      const marks = new Uint32Array(capacity);
      marks.set(first);
      this.#marks[0] = marks;
      return;
    }
    this.#pages.push(new Float64Array(3 * pageSlots));
    this.#marks.push(new Uint32Array(pageSlots));
  }
}

// Math.max(0, −0) is +0, so a bucket never holds a negative zero.
function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
