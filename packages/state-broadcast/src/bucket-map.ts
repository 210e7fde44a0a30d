import { type BucketState, SharedBatch } from "./batch.js";

/**
 * The latest state per key `(seed, rowId, colId)` of one namespace: the
 * interval buffer of the hub and the merged backlog of a lagging subscriber.
 * Seeds come out in first-seen order (a seed kept between rounds keeps its
 * place), keys within a seed in first-seen order.
 *
 * States are copied into typed arrays rather than held as the publisher's
 * objects, so those objects die young instead of being promoted and
 * collected later. Measured on the server (8 clients, 250 ms interval, the
 * 2-core EPYC machine): with a `Map` per row holding the objects, merging
 * was the top frame at 14% of samples and ingest 235k deltas/s; with this
 * table, 3.4% and 310k (bench/README.md, "Where the time goes").
 */
export class BucketMap {
  readonly #seeds = new Map<bigint, SeedStates>();
  /** Keep each seed's arrays when it empties (a buffer refilled every interval), or let them go. */
  readonly #keepCapacity: boolean;
  #size = 0;

  constructor(options: { keepCapacity?: boolean } = {}) {
    this.#keepCapacity = options.keepCapacity ?? false;
  }

  /** Distinct keys held. */
  get size(): number {
    return this.#size;
  }

  /** Records `buckets` as the latest states of their keys; returns how many replaced a held state. */
  merge(seed: bigint, buckets: readonly BucketState[]): number {
    // An empty seed entry would later come out as an empty batch.
    if (buckets.length === 0) return 0;
    let states = this.#seeds.get(seed);
    if (states === undefined) {
      states = new SeedStates();
      this.#seeds.set(seed, states);
    }
    const before = states.size;
    for (let i = 0; i < buckets.length; i++) states.set(buckets[i] as BucketState);
    const added = states.size - before;
    this.#size += added;
    return buckets.length - added;
  }

  /** Removes and returns up to `maxBuckets` states of the oldest seed as a batch, or `undefined` when empty. */
  take(namespace: string, maxBuckets: number): SharedBatch | undefined {
    for (const [seed, states] of this.#seeds) {
      if (states.size === 0) continue;
      const buckets = states.take(maxBuckets);
      this.#size -= buckets.length;
      if (states.size === 0 && !this.#keepCapacity) this.#seeds.delete(seed);
      return new SharedBatch(namespace, seed, buckets);
    }
    return undefined;
  }

  /** Empties the map into batches of at most `maxBuckets`, seed by seed. */
  drain(namespace: string, maxBuckets: number): SharedBatch[] {
    const batches: SharedBatch[] = [];
    for (const [seed, states] of this.#seeds) {
      if (states.size === 0) {
        // Idle for a whole round: let its arrays go.
        this.#seeds.delete(seed);
        continue;
      }
      while (states.size > 0)
        batches.push(new SharedBatch(namespace, seed, states.take(maxBuckets)));
      if (!this.#keepCapacity) this.#seeds.delete(seed);
    }
    this.#size = 0;
    return batches;
  }

  /** Forgets every held state. */
  clear(): void {
    this.#seeds.clear();
    this.#size = 0;
  }
}

const initialCapacity = 64;

/**
 * The states of one seed: an open-addressing hash table (linear probing)
 * from `(rowId, colId)` to an entry in parallel arrays kept in first-seen
 * order. Taking entries advances `#head`; a taken key that comes back is
 * appended as a new entry, so it is delivered again, after the others.
 */
class SeedStates {
  /** Entry index + 1 per hash slot; 0 is empty. At most half full. */
  #slots = new Int32Array(initialCapacity * 2);
  #rows = new Float64Array(initialCapacity);
  #cols = new Float64Array(initialCapacity);
  #probs = new Float64Array(initialCapacity);
  #times = new Float64Array(initialCapacity);
  /** Entries written; those below `#head` were taken. */
  #length = 0;
  #head = 0;

  get size(): number {
    return this.#length - this.#head;
  }

  set(bucket: BucketState): void {
    const { rowId, colId } = bucket;
    // Room for one more entry first: growing rebuilds the slots.
    if (this.#length === this.#rows.length) this.#grow();
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let slot = hash(rowId, colId) & mask; ; slot = (slot + 1) & mask) {
      const entry = (slots[slot] as number) - 1;
      if (entry < 0) {
        slots[slot] = this.#append(bucket) + 1;
        return;
      }
      if (this.#rows[entry] === rowId && this.#cols[entry] === colId) {
        if (entry >= this.#head) {
          this.#probs[entry] = bucket.prob;
          this.#times[entry] = bucket.lastUpdateTimeMs;
        } else {
          // Taken already: deliver the new state as a new entry.
          slots[slot] = this.#append(bucket) + 1;
        }
        return;
      }
    }
  }

  /** Removes and returns the oldest `max` states (at least one if any are held). */
  take(max: number): BucketState[] {
    const count = Math.min(max, this.size);
    const out: BucketState[] = new Array(count);
    const start = this.#head;
    for (let i = 0; i < count; i++) {
      const entry = start + i;
      out[i] = {
        rowId: this.#rows[entry] as number,
        colId: this.#cols[entry] as number,
        prob: this.#probs[entry] as number,
        lastUpdateTimeMs: this.#times[entry] as number,
      };
    }
    this.#head += count;
    if (this.#head === this.#length) this.#reset();
    return out;
  }

  #append(bucket: BucketState): number {
    const entry = this.#length++;
    this.#rows[entry] = bucket.rowId;
    this.#cols[entry] = bucket.colId;
    this.#probs[entry] = bucket.prob;
    this.#times[entry] = bucket.lastUpdateTimeMs;
    return entry;
  }

  #reset(): void {
    this.#slots.fill(0);
    this.#length = 0;
    this.#head = 0;
  }

  /** Drops taken entries; doubles the arrays if the live ones fill more than half. */
  #grow(): void {
    const live = this.size;
    const capacity = live * 2 > this.#rows.length ? this.#rows.length * 2 : this.#rows.length;
    const head = this.#head;
    this.#rows = moved(this.#rows, head, live, capacity);
    this.#cols = moved(this.#cols, head, live, capacity);
    this.#probs = moved(this.#probs, head, live, capacity);
    this.#times = moved(this.#times, head, live, capacity);
    this.#length = live;
    this.#head = 0;
    const slots = new Int32Array(capacity * 2);
    const mask = slots.length - 1;
    for (let entry = 0; entry < live; entry++) {
      let slot = hash(this.#rows[entry] as number, this.#cols[entry] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = entry + 1;
    }
    this.#slots = slots;
  }
}

/** `source[start, start + count)` at the front of an array of `capacity` (the same one if it fits). */
function moved(
  source: Float64Array<ArrayBuffer>,
  start: number,
  count: number,
  capacity: number,
): Float64Array<ArrayBuffer> {
  if (capacity === source.length) {
    source.copyWithin(0, start, start + count);
    return source;
  }
  const target = new Float64Array(capacity);
  target.set(source.subarray(start, start + count));
  return target;
}

/**
 * Mixes the low 32 bits of both ids (equal keys hash equal; ids are small
 * integers in practice, and any number still works, just with collisions).
 */
function hash(rowId: number, colId: number): number {
  let h = Math.imul(rowId | 0, 0x9e3779b1) ^ Math.imul(colId | 0, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 13)) >>> 0;
}
