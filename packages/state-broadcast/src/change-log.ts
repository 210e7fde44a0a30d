import type { BucketState } from "./batch.js";

/**
 * Every change published to one namespace that some subscriber may still
 * need, as the latest state per key `(seed, rowId, colId)`. Each published
 * bucket gets the next version number; a key published again supersedes its
 * earlier entry, so the log never holds more than one live entry per key.
 *
 * It is what lets fan-out cost follow what each subscriber sends rather than
 * what is published: a subscriber that keeps up receives the shared batches
 * (encoded once for all); one that falls behind keeps only a version cursor
 * here and, when it can write again, reads the live entries past its cursor,
 * the latest value per key. Publishing costs one hash probe per bucket
 * whatever the number of subscribers, where merging into a private map per
 * lagging subscriber cost one per bucket per subscriber (bench/README.md,
 * "Where the time goes"). The interval flush is a read of the same log.
 *
 * Entries no subscriber needs any more (superseded, or older than every
 * cursor) are dropped by {@link ChangeLog.compact}.
 */
export class ChangeLog {
  /** The oldest version any subscriber has yet to receive: entries below it can go. */
  readonly #keepFrom: () => number;
  /** Per seed, in first-seen order (the order a pass reads them). */
  readonly #seeds = new Map<bigint, SeedLog>();
  #nextOrdinal = 0;
  /** The version the next published bucket gets. */
  #tail = 0;
  /** Versions below this are readable (immediate mode: all; interval mode: up to the last flush). */
  #readable = 0;
  #sinceCompaction = 0;

  constructor(keepFrom: () => number) {
    this.#keepFrom = keepFrom;
  }

  /** The version the next published bucket gets. */
  get tail(): number {
    return this.#tail;
  }

  /** Versions below this may be delivered. */
  get readable(): number {
    return this.#readable;
  }

  /** Makes everything published so far readable (a flush, or every publish in immediate mode). */
  markReadable(): void {
    this.#readable = this.#tail;
  }

  /**
   * Appends `buckets` in order; returns how many superseded an entry that was
   * not yet readable (coalesced before anyone could receive it).
   */
  append(seed: bigint, buckets: readonly BucketState[]): number {
    let log = this.#seeds.get(seed);
    if (log === undefined) {
      log = new SeedLog(seed, this.#nextOrdinal++);
      this.#seeds.set(seed, log);
    }
    let coalesced = 0;
    for (let i = 0; i < buckets.length; i++) {
      if (log.full) log.makeRoom(Math.min(this.#keepFrom(), this.#readable));
      if (log.append(buckets[i] as BucketState, this.#tail++) >= this.#readable) coalesced++;
    }
    this.#sinceCompaction += buckets.length;
    return coalesced;
  }

  /** Whether enough was appended since the last compaction to make one worth its cost. */
  get wantsCompaction(): boolean {
    let held = 0;
    for (const log of this.#seeds.values()) held += log.length;
    return this.#sinceCompaction > Math.max(4096, held);
  }

  /**
   * Drops every entry no reader needs: superseded ones, and all below the
   * oldest version any subscriber has yet to receive. Seeds left empty are
   * forgotten.
   */
  compact(): void {
    const keepFrom = Math.min(this.#keepFrom(), this.#readable);
    for (const [seed, log] of this.#seeds) {
      log.compact(keepFrom);
      if (log.length === 0) this.#seeds.delete(seed);
    }
    this.#sinceCompaction = 0;
  }

  /** Starts a pass over the versions in `[from, until)`. */
  reader(from: number, until: number): LogReader {
    return { start: from, until, ordinal: -1, from, delivered: 0, done: from >= until };
  }

  /**
   * The next up to `max` live entries of the pass, all of one seed, or
   * `undefined` when none are left. Advances `reader`, and sets its `done`
   * as soon as nothing live is left in the pass.
   */
  read(reader: LogReader, max: number): { seed: bigint; buckets: BucketState[] } | undefined {
    let found: { seed: bigint; buckets: BucketState[] } | undefined;
    for (const log of this.#seeds.values()) {
      if (log.ordinal < reader.ordinal) continue;
      if (found !== undefined) {
        // Is anything left in a later seed? Then the pass goes on.
        if (log.hasLive(reader.start, reader.until)) return found;
        continue;
      }
      if (log.ordinal > reader.ordinal) {
        reader.ordinal = log.ordinal;
        reader.from = reader.start;
      }
      const buckets = log.read(reader, max);
      if (buckets.length === 0) continue;
      reader.delivered += buckets.length;
      found = { seed: log.seed, buckets };
      // The read stops at the next live entry of its seed, if any.
      if (reader.from < reader.until) return found;
    }
    reader.done = true;
    return found;
  }

  /** Live entries a reader has yet to deliver, up to what is readable now: O(entries held). */
  pending(reader: LogReader): number {
    let count = 0;
    for (const log of this.#seeds.values()) {
      if (log.ordinal > reader.ordinal) count += log.countLive(reader.start, this.#readable);
      else if (log.ordinal === reader.ordinal) count += log.countLive(reader.from, this.#readable);
      else count += log.countLive(reader.until, this.#readable);
    }
    return count;
  }
}

/** A pass over a {@link ChangeLog}: versions `[start, until)`, seed by seed. */
export interface LogReader {
  readonly start: number;
  readonly until: number;
  /** The seed being read (its ordinal); later seeds are read from `start`. */
  ordinal: number;
  /** The next version to read in the current seed. */
  from: number;
  /** Entries handed out by this pass so far. */
  delivered: number;
  /** Whether nothing live is left to read. */
  done: boolean;
}

const initialCapacity = 64;

/**
 * The entries of one seed in version order, in parallel typed arrays (so
 * the publisher's objects die young), with an open-addressing hash table
 * (linear probing, at most half full) from `(rowId, colId)` to the live
 * entry of that key.
 */
class SeedLog {
  readonly seed: bigint;
  readonly ordinal: number;
  /** Position + 1 of each key's live entry; 0 is empty. */
  #slots = new Int32Array(initialCapacity * 2);
  #rows = new Float64Array(initialCapacity);
  #cols = new Float64Array(initialCapacity);
  #probs = new Float64Array(initialCapacity);
  #times = new Float64Array(initialCapacity);
  #versions = new Float64Array(initialCapacity);
  #live = new Uint8Array(initialCapacity);
  length = 0;

  constructor(seed: bigint, ordinal: number) {
    this.seed = seed;
    this.ordinal = ordinal;
  }

  /** Whether the next append needs {@link SeedLog.makeRoom} first. */
  get full(): boolean {
    return this.length === this.#rows.length;
  }

  /** Appends a bucket at `version`; returns the version it superseded, or `-1`. Not when full. */
  append(bucket: BucketState, version: number): number {
    const { rowId, colId } = bucket;
    const slots = this.#slots;
    const mask = slots.length - 1;
    let slot = hash(rowId, colId) & mask;
    let superseded = -1;
    for (;;) {
      const entry = (slots[slot] as number) - 1;
      if (entry < 0) break;
      if (this.#rows[entry] === rowId && this.#cols[entry] === colId) {
        this.#live[entry] = 0;
        superseded = this.#versions[entry] as number;
        break;
      }
      slot = (slot + 1) & mask;
    }
    const entry = this.length++;
    this.#rows[entry] = rowId;
    this.#cols[entry] = colId;
    this.#probs[entry] = bucket.prob;
    this.#times[entry] = bucket.lastUpdateTimeMs;
    this.#versions[entry] = version;
    this.#live[entry] = 1;
    slots[slot] = entry + 1;
    return superseded;
  }

  /** Up to `max` live entries with versions in `[reader.from, reader.until)`; moves `reader.from` past them. */
  read(reader: LogReader, max: number): BucketState[] {
    const out: BucketState[] = [];
    const versions = this.#versions;
    let entry = this.#lowerBound(reader.from);
    for (; entry < this.length && (versions[entry] as number) < reader.until; entry++) {
      if (this.#live[entry] === 0) continue;
      if (out.length === max) break;
      out.push({
        rowId: this.#rows[entry] as number,
        colId: this.#cols[entry] as number,
        prob: this.#probs[entry] as number,
        lastUpdateTimeMs: this.#times[entry] as number,
      });
    }
    reader.from =
      entry < this.length ? Math.min(versions[entry] as number, reader.until) : reader.until;
    return out;
  }

  /** Whether a live entry has a version in `[from, until)`. */
  hasLive(from: number, until: number): boolean {
    const versions = this.#versions;
    for (let entry = this.#lowerBound(from); entry < this.length; entry++) {
      if ((versions[entry] as number) >= until) return false;
      if (this.#live[entry] === 1) return true;
    }
    return false;
  }

  countLive(from: number, until: number): number {
    let count = 0;
    const versions = this.#versions;
    for (let entry = this.#lowerBound(from); entry < this.length; entry++) {
      if ((versions[entry] as number) >= until) break;
      count += this.#live[entry] as number;
    }
    return count;
  }

  /** Keeps only live entries at or past `keepFrom`. */
  compact(keepFrom: number): void {
    let kept = 0;
    for (let entry = 0; entry < this.length; entry++) {
      if (this.#live[entry] === 0 || (this.#versions[entry] as number) < keepFrom) continue;
      if (kept !== entry) {
        this.#rows[kept] = this.#rows[entry] as number;
        this.#cols[kept] = this.#cols[entry] as number;
        this.#probs[kept] = this.#probs[entry] as number;
        this.#times[kept] = this.#times[entry] as number;
        this.#versions[kept] = this.#versions[entry] as number;
        this.#live[kept] = 1;
      }
      kept++;
    }
    this.length = kept;
    this.#rehash(this.#slots.length);
  }

  /** First entry with a version at or past `version` (versions only grow). */
  #lowerBound(version: number): number {
    const versions = this.#versions;
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((versions[mid] as number) < version) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Compacts; doubles the arrays if what is kept still fills more than half. */
  makeRoom(keepFrom: number): void {
    this.compact(keepFrom);
    const capacity = this.#rows.length;
    if (this.length * 2 <= capacity) return;
    this.#rows = grown(this.#rows, capacity * 2);
    this.#cols = grown(this.#cols, capacity * 2);
    this.#probs = grown(this.#probs, capacity * 2);
    this.#times = grown(this.#times, capacity * 2);
    this.#versions = grown(this.#versions, capacity * 2);
    const live = new Uint8Array(capacity * 2);
    live.set(this.#live);
    this.#live = live;
    this.#rehash(capacity * 4);
  }

  #rehash(slotCount: number): void {
    const slots =
      slotCount === this.#slots.length ? this.#slots.fill(0) : new Int32Array(slotCount);
    const mask = slotCount - 1;
    for (let entry = 0; entry < this.length; entry++) {
      let slot = hash(this.#rows[entry] as number, this.#cols[entry] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = entry + 1;
    }
    this.#slots = slots;
  }
}

function grown(source: Float64Array<ArrayBuffer>, capacity: number): Float64Array<ArrayBuffer> {
  const target = new Float64Array(capacity);
  target.set(source);
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
