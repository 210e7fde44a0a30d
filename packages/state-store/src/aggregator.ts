import { randomUUID } from "node:crypto";
import { StoreCounters } from "./counters.js";
import { StoreError } from "./errors.js";
import { limitExceededError } from "./limits.js";
import type { ResolvedStoreOptions } from "./options.js";
import { readStoreClock, SeedRange } from "./seed-range.js";
import { SeedTable } from "./seed-table.js";
import { concatChunks, nextTurn, restoreSlice, snapshotSlice } from "./snapshot.js";
import { SnapshotBuilder, type Tables } from "./snapshot-builder.js";
import { runDecoder, runDecoderSync, snapshotDecoder } from "./snapshot-decoder.js";
import { encodeSnapshot, type FrozenSeed } from "./snapshot-encoder.js";
import type {
  BucketState,
  DeltaResult,
  DeltaUpdateInput,
  EvictResult,
  OfferResult,
  RestoreResult,
  SeedCursor,
  SeedPage,
  StateOfferInput,
  StoreStats,
  UpdateResult,
} from "./store.js";
import { isLearning, type StoreEpoch } from "./store-capabilities.js";
import { checkSeed, DeltaBatch, validateDelta, validateOffer, validateUpdate } from "./validate.js";

/**
 * Everything an in-memory store holds, for all namespaces: the tables, the
 * seed window arithmetic and the counters. `InMemoryStore` and its
 * namespace views are thin doors onto it.
 */
export class Aggregator {
  readonly options: ResolvedStoreOptions;
  #namespaces: Tables = new Map();
  readonly #batch = new DeltaBatch();
  readonly #range: SeedRange;
  readonly #counters = new StoreCounters();
  /**
   * This store's one epoch: a process's memory lives and dies with it, so a
   * new store is a new epoch even when it restores a snapshot — whatever
   * was applied after the snapshot was taken is gone, and only the clients
   * can give it back (learning mode).
   */
  readonly epoch: StoreEpoch;

  constructor(options: ResolvedStoreOptions) {
    this.options = options;
    this.#range = new SeedRange(options);
    this.epoch = Object.freeze({ id: randomUUID(), startedAtMs: readStoreClock(options) });
  }

  applyUpdate(namespace: string, update: DeltaUpdateInput): UpdateResult {
    const batch = this.#batch;
    validateUpdate(update, this.options, batch);
    const count = batch.length;
    const now = this.#now();
    const status = this.#range.classify(update.seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, count);
      return { status, buckets: [], clampedTimestamps: 0 };
    }
    if (count === 0) return { status, buckets: [], clampedTimestamps: 0 };
    const seed = update.seed;
    const held = this.#namespaces.get(namespace)?.get(seed);
    // A new seed's batch goes into a table of its own, kept only if it passes
    // the limits; a held seed's is checked first, and only near its limit.
    const table = held ?? new SeedTable();
    const { keys, deltas, times } = batch;
    const { decayPerMs, maxCols, maxBucketsPerSeed } = this.options;
    const latest = this.#range.latestTimestamp(now);
    if (held !== undefined && held.size + count > maxBucketsPerSeed) {
      const size = held.sizeAfter(keys, deltas, times, count, latest, decayPerMs);
      if (size > maxBucketsPerSeed) throw this.#tooManyBuckets(namespace, seed, size);
    }
    let clamped = 0;
    table.beginBatch();
    for (let i = 0; i < count; i++) {
      let ts = times[i] as number;
      if (ts > latest) {
        ts = latest;
        clamped++;
      }
      table.apply(keys[i] as number, deltas[i] as number, ts, decayPerMs);
    }
    const buckets = table.endBatch(maxCols);
    if (held === undefined) this.#keepNewSeed(namespace, seed, table, now);
    else if (table.size === 0) this.#forget(namespace, seed);
    this.#counters.applied += count;
    this.#counters.clamped += clamped;
    return { status, buckets, clampedTimestamps: clamped };
  }

  applyDelta(
    namespace: string,
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): DeltaResult {
    const key = validateDelta(seed, rowId, colId, deltaProb, timestampMs, this.options);
    const now = this.#now();
    const status = this.#range.classify(seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, 1);
      return { status, bucket: undefined, timestampClamped: false };
    }
    const latest = this.#range.latestTimestamp(now);
    const timestampClamped = timestampMs > latest;
    const ts = timestampClamped ? latest : timestampMs;
    const held = this.#namespaces.get(namespace)?.get(seed);
    const { decayPerMs, maxBucketsPerSeed } = this.options;
    if (held !== undefined && held.size + 1 > maxBucketsPerSeed) {
      const one = (value: number) => Float64Array.of(value);
      const size = held.sizeAfter(one(key), one(deltaProb), one(ts), 1, latest, decayPerMs);
      if (size > maxBucketsPerSeed) throw this.#tooManyBuckets(namespace, seed, size);
    }
    const table = held ?? new SeedTable();
    table.beginBatch();
    table.apply(key, deltaProb, ts, decayPerMs);
    // A delta that leaves a default bucket at 0 is applied all the same:
    // {0, ts} is what the formula gives, and nothing needs storing.
    const bucket = table.endBatch(this.options.maxCols)[0] ?? {
      rowId,
      colId,
      prob: 0,
      lastUpdateTimeMs: ts,
    };
    if (held === undefined) this.#keepNewSeed(namespace, seed, table, now);
    else if (table.size === 0) this.#forget(namespace, seed);
    this.#counters.applied++;
    if (timestampClamped) this.#counters.clamped++;
    return { status, bucket, timestampClamped };
  }

  applyOffer(namespace: string, offer: StateOfferInput): OfferResult {
    const batch = this.#batch;
    validateOffer(offer, this.options, batch);
    const now = this.#now();
    if (!isLearning(this.epoch, now, this.options.learningPeriodMs)) {
      this.#counters.offer("learning_over");
      return { status: "learning_over", buckets: [] };
    }
    const status = this.#range.classify(offer.seed, now);
    if (status !== "applied" || batch.length === 0) {
      this.#counters.offer(status);
      return { status, buckets: [] };
    }
    const seed = offer.seed;
    const held = this.#namespaces.get(namespace)?.get(seed);
    const table = held ?? new SeedTable();
    const { keys, deltas: values, times, length } = batch;
    const { decayPerMs, maxCols, maxBucketsPerSeed } = this.options;
    if (held !== undefined && held.size + length > maxBucketsPerSeed) {
      // A merge never lowers a bucket, so only new keys change the size.
      const added = new Set<number>();
      for (let i = 0; i < length; i++) {
        const key = keys[i] as number;
        if ((values[i] as number) > 0 && !held.has(key)) added.add(key);
      }
      const size = held.size + added.size;
      if (size > maxBucketsPerSeed) throw this.#tooManyBuckets(namespace, seed, size);
    }
    const latest = this.#range.latestTimestamp(now);
    table.beginBatch();
    for (let i = 0; i < length; i++) {
      table.merge(
        keys[i] as number,
        values[i] as number,
        Math.min(times[i] as number, latest),
        decayPerMs,
      );
    }
    const buckets = table.endBatch(maxCols);
    if (held === undefined) this.#keepNewSeed(namespace, seed, table, now);
    this.#counters.offer(status);
    return { status, buckets };
  }

  getSeed(namespace: string, seed: bigint): BucketState[] {
    checkSeed(seed, "seed", this.options);
    return this.#namespaces.get(namespace)?.get(seed)?.buckets(this.options.maxCols) ?? [];
  }

  readSeed(
    namespace: string,
    seed: bigint,
    cursor: SeedCursor | undefined,
    limit: number,
  ): SeedPage {
    checkSeed(seed, "seed", this.options);
    const from = cursor ?? 0;
    if (typeof from !== "number" || !Number.isInteger(from) || from < 0) {
      throw new StoreError("invalid_argument", "cursor", "must be a cursor this store returned");
    }
    if (!Number.isInteger(limit) || limit < 1) {
      throw new StoreError("invalid_argument", "limit", `must be an integer ≥ 1, got ${limit}`);
    }
    const table = this.#namespaces.get(namespace)?.get(seed);
    if (table === undefined) return { buckets: [], next: undefined };
    return table.page(from, limit, this.options.maxCols);
  }

  evictBefore(seed: bigint): EvictResult {
    if (typeof seed !== "bigint") {
      throw new StoreError("invalid_argument", "seed", `must be a bigint, got ${typeof seed}`);
    }
    this.#range.evictBefore(seed);
    let seeds = 0;
    let buckets = 0;
    for (const [namespace, tables] of this.#namespaces) {
      for (const [held, table] of tables) {
        if (held < seed) {
          seeds++;
          buckets += table.size;
          tables.delete(held);
        }
      }
      if (tables.size === 0) this.#namespaces.delete(namespace);
    }
    this.#counters.evicted(seeds, buckets);
    return { seeds, buckets };
  }

  /** Evicts every seed behind `now − seedEvictionTtlMs`; what the timer runs. */
  evictExpired(): EvictResult {
    return this.evictBefore(BigInt(Math.floor(this.#now())) - this.options.ttlBig);
  }

  stats(): StoreStats {
    let seeds = 0;
    let buckets = 0;
    for (const tables of this.#namespaces.values()) {
      seeds += tables.size;
      for (const table of tables.values()) buckets += table.size;
    }
    return {
      namespaces: this.#namespaces.size,
      seeds,
      buckets,
      ...this.#counters.counts(),
    };
  }

  /** Every bucket as one `StoreSnapshot`, in one synchronous step. */
  snapshot(): Uint8Array {
    const now = this.#now();
    const seeds = this.#freeze();
    try {
      return concatChunks([
        ...encodeSnapshot(seeds, now, this.epoch.id, this.options.maxCols, snapshotSlice),
      ]);
    } finally {
      this.#thaw(seeds);
    }
  }

  /**
   * Every bucket as it stood at the first `next()`, as the chunks of one
   * `StoreSnapshot`, with a turn of the event loop before each chunk after
   * the first. Consistency costs no copy up front: each table keeps its
   * columns as they were, copying a page only when it is about to write one
   * the snapshot has not read yet (frozen-columns.ts has the figures).
   */
  async *snapshotChunks(): AsyncGenerator<Uint8Array, void, undefined> {
    const now = this.#now();
    const seeds = this.#freeze();
    try {
      for (const chunk of encodeSnapshot(
        seeds,
        now,
        this.epoch.id,
        this.options.maxCols,
        snapshotSlice,
      )) {
        yield chunk;
        await nextTurn();
      }
    } finally {
      this.#thaw(seeds);
    }
  }

  /** Replaces everything held with a snapshot's contents, in one synchronous step. */
  restore(bytes: Uint8Array): RestoreResult {
    if (!(bytes instanceof Uint8Array)) {
      throw new StoreError("invalid_argument", "bytes", "must be a Uint8Array");
    }
    const builder = new SnapshotBuilder(this.options, this.#range, this.#now());
    runDecoderSync(snapshotDecoder(builder, restoreSlice), bytes);
    return this.#install(builder);
  }

  /**
   * Replaces everything held with a snapshot's contents, read from `chunks`
   * as they come and built off to the side with a turn of the event loop
   * every `restoreSlice` values; swapped in at the end, so a bad snapshot
   * changes nothing. Updates applied while it runs are lost with the
   * contents they changed.
   */
  async restoreChunks(
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<RestoreResult> {
    const builder = new SnapshotBuilder(this.options, this.#range, this.#now());
    await runDecoder(snapshotDecoder(builder, restoreSlice), chunks, nextTurn);
    return this.#install(builder);
  }

  #install(builder: SnapshotBuilder): RestoreResult {
    const result = builder.finish();
    this.#namespaces = builder.tables;
    return result;
  }

  #freeze(): FrozenSeed[] {
    const seeds: FrozenSeed[] = [];
    for (const [namespace, tables] of this.#namespaces) {
      for (const [seed, table] of tables) seeds.push({ namespace, seed, columns: table.freeze() });
    }
    return seeds;
  }

  #thaw(seeds: readonly FrozenSeed[]): void {
    for (const { columns } of seeds) columns.close();
  }

  #now(): number {
    return readStoreClock(this.options);
  }

  /**
   * Stores the table a new seed's first batch was applied to, if it holds
   * anything and the limits allow; otherwise throws, and the table (never
   * stored) is dropped with everything the batch did to it.
   */
  #keepNewSeed(namespace: string, seed: bigint, table: SeedTable, now: number): void {
    if (table.size === 0) return;
    const { maxBucketsPerSeed, maxSeedsPerNamespace, maxNamespaces } = this.options;
    if (table.size > maxBucketsPerSeed) throw this.#tooManyBuckets(namespace, seed, table.size);
    let tables = this.#namespaces.get(namespace);
    // Counted only near the limit: fewer namespaces held than it allows
    // means fewer live ones too.
    if (this.#namespaces.size >= maxNamespaces) {
      const horizon = this.#range.horizon(now);
      if (!holdsLiveSeed(tables, horizon)) {
        let live = 0;
        for (const held of this.#namespaces.values()) if (holdsLiveSeed(held, horizon)) live++;
        if (live >= maxNamespaces) {
          this.#counters.refuse("max_namespaces");
          throw limitExceededError("max_namespaces", namespace, seed, live, maxNamespaces);
        }
      }
    }
    if (tables !== undefined && tables.size >= maxSeedsPerNamespace) {
      // Seeds behind the horizon wait for the next eviction; they are not live.
      const horizon = this.#range.horizon(now);
      let live = 0;
      for (const held of tables.keys()) if (held >= horizon) live++;
      if (live >= maxSeedsPerNamespace) {
        this.#counters.refuse("max_seeds_per_namespace");
        throw limitExceededError(
          "max_seeds_per_namespace",
          namespace,
          seed,
          live,
          maxSeedsPerNamespace,
        );
      }
    }
    if (tables === undefined) {
      tables = new Map();
      this.#namespaces.set(namespace, tables);
    }
    tables.set(seed, table);
  }

  #tooManyBuckets(namespace: string, seed: bigint, size: number): StoreError {
    this.#counters.refuse("max_buckets_per_seed");
    const max = this.options.maxBucketsPerSeed;
    return limitExceededError("max_buckets_per_seed", namespace, seed, size, max);
  }

  #forget(namespace: string, seed: bigint): void {
    const tables = this.#namespaces.get(namespace);
    tables?.delete(seed);
    if (tables?.size === 0) this.#namespaces.delete(namespace);
  }
}

function holdsLiveSeed(tables: Map<bigint, SeedTable> | undefined, horizon: bigint): boolean {
  if (tables !== undefined) for (const seed of tables.keys()) if (seed >= horizon) return true;
  return false;
}
