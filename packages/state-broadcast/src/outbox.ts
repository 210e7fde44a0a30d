import type { Batch } from "./batch.js";
import { BucketMap } from "./bucket-map.js";

/**
 * What one subscriber has yet to receive, in one of two shapes:
 *
 * - **shared**: a FIFO of references to the batches every subscriber gets.
 *   Adding one is O(1) whatever its size, and the subscriber later receives
 *   the very object (and encoded bytes) the others received.
 * - **merging**: once {@link Outbox.settle} finds more than
 *   `mergeAfterBuckets` buckets in the shared backlog, it folds them into a
 *   {@link BucketMap} and later batches merge into it, so the backlog is
 *   bounded by distinct keys and the subscriber receives the latest value per
 *   key, not every value.
 *
 * Invariant: at most one shape holds anything. New batches merge while the
 * map is non-empty, so a newer value can never be overtaken by an older one
 * still waiting in the map; the outbox returns to shared once the map drains.
 */
export class Outbox {
  readonly #namespace: string;
  readonly #mergeAfterBuckets: number;
  readonly #maxBucketsPerBatch: number;
  #queue: Batch[] = [];
  #head = 0;
  #queuedBuckets = 0;
  readonly #merged = new BucketMap();

  constructor(namespace: string, mergeAfterBuckets: number, maxBucketsPerBatch: number) {
    this.#namespace = namespace;
    this.#mergeAfterBuckets = mergeAfterBuckets;
    this.#maxBucketsPerBatch = maxBucketsPerBatch;
  }

  /** Undelivered buckets: queued shared buckets, or distinct keys once merging. */
  get pendingBuckets(): number {
    return this.#queuedBuckets + this.#merged.size;
  }

  /** Whether nothing waits. */
  get isEmpty(): boolean {
    return this.#head === this.#queue.length && this.#merged.size === 0;
  }

  /** Whether the backlog is held per key (the subscriber fell behind). */
  get isMerging(): boolean {
    return this.#merged.size > 0;
  }

  /** Adds a batch; returns how many bucket updates were merged into a pending value. */
  push(batch: Batch): number {
    if (this.#merged.size > 0) return this.#merged.merge(batch.seed, batch.buckets);
    this.#queue.push(batch);
    this.#queuedBuckets += batch.buckets.length;
    return 0;
  }

  /**
   * Folds the shared backlog into one entry per key if it holds more than
   * `mergeAfterBuckets` buckets; returns how many updates were merged. The hub
   * calls it between delivery rounds, so one large flush is always queued
   * whole as shared batches and never forces its own merge.
   */
  settle(): number {
    return this.#queuedBuckets > this.#mergeAfterBuckets ? this.#fold() : 0;
  }

  /** Removes and returns the next batch to deliver, or `undefined` when empty. */
  take(): Batch | undefined {
    if (this.#head < this.#queue.length) {
      const batch = this.#queue[this.#head] as Batch;
      this.#queue[this.#head] = EMPTY;
      this.#head++;
      this.#queuedBuckets -= batch.buckets.length;
      this.#compact();
      return batch;
    }
    return this.#merged.take(this.#namespace, this.#maxBucketsPerBatch);
  }

  /** Drops everything pending. */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedBuckets = 0;
    this.#merged.clear();
  }

  #fold(): number {
    let merges = 0;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const batch = this.#queue[i] as Batch;
      merges += this.#merged.merge(batch.seed, batch.buckets);
    }
    this.#queue = [];
    this.#head = 0;
    this.#queuedBuckets = 0;
    return merges;
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
const EMPTY: Batch = Object.freeze({ namespace: "", seed: 0n, buckets: [] });
