import { SharedBatch } from "./batch.js";
import type { ChangeLog, LogReader } from "./change-log.js";

/**
 * What one subscriber has yet to receive, in one of two shapes:
 *
 * - **shared**: a FIFO of references to the batches every subscriber gets.
 *   Adding one is O(1) whatever its size, and the subscriber later receives
 *   the very object (and encoded bytes) the others received.
 * - **behind**: once {@link Outbox.settle} finds more than
 *   `mergeAfterBuckets` buckets in the shared backlog, the outbox drops it
 *   and keeps only a cursor into the namespace's {@link ChangeLog}: later
 *   batches cost it nothing, and it receives the latest value per key of
 *   everything past the cursor, read when it takes. Once a read finds
 *   nothing left, it shares batches again.
 *
 * Either way a newer value is never overtaken by an older one: the log
 * holds only the latest entry per key, and shared batches resume only
 * after the log has been read up to what they follow.
 */
export class Outbox {
  readonly #namespace: string;
  readonly #log: ChangeLog;
  readonly #mergeAfterBuckets: number;
  readonly #maxBucketsPerBatch: number;
  #queue: SharedBatch[] = [];
  #head = 0;
  #queuedBuckets = 0;
  /** Every version below this has been taken (or was published before subscribing). */
  #takenUntil: number;
  /** Behind: the pass over the log being read. */
  #reader: LogReader | undefined;

  constructor(
    namespace: string,
    log: ChangeLog,
    mergeAfterBuckets: number,
    maxBucketsPerBatch: number,
  ) {
    this.#namespace = namespace;
    this.#log = log;
    this.#mergeAfterBuckets = mergeAfterBuckets;
    this.#maxBucketsPerBatch = maxBucketsPerBatch;
    this.#takenUntil = log.readable;
  }

  /** Whether it reads from the log (it fell behind). */
  get isBehind(): boolean {
    return this.#reader !== undefined;
  }

  /**
   * Undelivered buckets: queued shared buckets, or, when behind, the distinct
   * keys past the cursor (counted over the log: O(entries held)).
   */
  get pendingBuckets(): number {
    return this.#reader === undefined ? this.#queuedBuckets : this.#log.pending(this.#reader);
  }

  /** Whether nothing waits. Cheap: when behind it answers false, and a take finds out. */
  get isEmpty(): boolean {
    return this.#reader === undefined && this.#head === this.#queue.length;
  }

  /** The oldest version this subscriber still needs from the log. */
  get neededFrom(): number {
    return this.#reader === undefined ? this.#takenUntil : this.#reader.start;
  }

  /**
   * Adds a batch every subscriber receives. Skipped when behind (the log has
   * it) or when a read of the log already covered it.
   */
  push(batch: SharedBatch): void {
    if (this.#reader !== undefined || batch.start < this.#takenUntil) return;
    this.#queue.push(batch);
    this.#queuedBuckets += batch.buckets.length;
  }

  /**
   * Falls behind if the shared backlog holds more than `mergeAfterBuckets`:
   * drops it and reads the log from where the subscriber stands. The hub
   * calls it between delivery rounds, so one large flush is always queued
   * whole as shared batches and never forces a switch by itself.
   */
  settle(): void {
    if (this.#reader !== undefined || this.#queuedBuckets <= this.#mergeAfterBuckets) return;
    this.#queue = [];
    this.#head = 0;
    this.#queuedBuckets = 0;
    this.#startPass();
  }

  /**
   * Removes and returns the next batch to deliver, or `undefined` when empty.
   * `onMerged` is told, as each pass over the log ends, how many updates it
   * skipped because a newer value of the same key replaced them.
   */
  take(onMerged: (updates: number) => void): SharedBatch | undefined {
    if (this.#head < this.#queue.length) {
      const batch = this.#queue[this.#head] as SharedBatch;
      this.#queue[this.#head] = EMPTY;
      this.#head++;
      this.#queuedBuckets -= batch.buckets.length;
      this.#takenUntil = batch.end;
      this.#compact();
      return batch;
    }
    for (let reader = this.#reader; reader !== undefined; reader = this.#reader) {
      const read = reader.done ? undefined : this.#log.read(reader, this.#maxBucketsPerBatch);
      if (reader.done) this.#endPass(reader, onMerged);
      if (read !== undefined)
        return new SharedBatch(this.#namespace, read.seed, read.buckets, 0, 0);
    }
    return undefined;
  }

  /** Records a batch handed straight to a waiting consumer. */
  handedOver(batch: SharedBatch): void {
    if (batch.end > this.#takenUntil) this.#takenUntil = batch.end;
  }

  /** Drops everything pending. */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedBuckets = 0;
    this.#reader = undefined;
  }

  /** Everything below the pass's end is taken: share batches again, or read what came since. */
  #endPass(reader: LogReader, onMerged: (updates: number) => void): void {
    onMerged(reader.until - reader.start - reader.delivered);
    this.#takenUntil = reader.until;
    if (reader.until === this.#log.readable) this.#reader = undefined;
    else this.#startPass();
  }

  #startPass(): void {
    this.#reader = this.#log.reader(this.#takenUntil, this.#log.readable);
  }

  // A subscriber that stays a batch or two behind never empties the queue, so
  // the consumed prefix is cut off once it is the larger half (amortised O(1)).
  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

// Overwrites taken slots so the queue does not keep delivered batches alive.
const EMPTY = new SharedBatch("", 0n, [], 0, 0);
