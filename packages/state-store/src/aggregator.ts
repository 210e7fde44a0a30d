import { StoreError } from "./errors.js";
import type { ResolvedOptions } from "./options.js";
import { readClock, SeedRange } from "./seed-range.js";
import { SeedTable } from "./seed-table.js";
import { decodeSnapshot, encodeSnapshot, type SeedEntry } from "./snapshot.js";
import type {
  ApplyStatus,
  BucketState,
  DeltaResult,
  DeltaUpdateInput,
  EvictResult,
  RestoreResult,
  StoreStats,
  UpdateResult,
} from "./store.js";
import { Batch, checkSeed, validateDelta, validateUpdate } from "./validate.js";

/**
 * Everything an in-memory store holds, for all namespaces: the tables, the
 * seed window arithmetic and the counters. `InMemoryStore` and its
 * namespace views are thin doors onto it.
 */
export class Aggregator {
  readonly options: ResolvedOptions;
  #namespaces = new Map<string, Map<bigint, SeedTable>>();
  readonly #batch = new Batch();
  readonly #range: SeedRange;
  #applied = 0;
  #tooOld = 0;
  #tooFarFuture = 0;
  #clamped = 0;
  #evictedSeeds = 0;
  #evictedBuckets = 0;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.#range = new SeedRange(options);
  }

  applyUpdate(namespace: string, update: DeltaUpdateInput): UpdateResult {
    const batch = this.#batch;
    validateUpdate(update, this.options, batch);
    const count = batch.length;
    const now = this.#now();
    const status = this.#range.classify(update.seed, now);
    if (status !== "applied") {
      this.#drop(status, count);
      return { status, buckets: [], clampedTimestamps: 0 };
    }
    if (count === 0) return { status, buckets: [], clampedTimestamps: 0 };
    const table = this.#table(namespace, update.seed);
    const { keys, deltas, times } = batch;
    const { decayPerMs, maxCols } = this.options;
    const latest = this.#range.latestTimestamp(now);
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
    if (table.size === 0) this.#forget(namespace, update.seed);
    this.#applied += count;
    this.#clamped += clamped;
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
      this.#drop(status, 1);
      return { status, bucket: undefined, timestampClamped: false };
    }
    const latest = this.#range.latestTimestamp(now);
    const timestampClamped = timestampMs > latest;
    const ts = timestampClamped ? latest : timestampMs;
    const table = this.#table(namespace, seed);
    table.beginBatch();
    table.apply(key, deltaProb, ts, this.options.decayPerMs);
    // A delta that leaves a default bucket at 0 is applied all the same:
    // {0, ts} is what the formula gives, and nothing needs storing.
    const bucket = table.endBatch(this.options.maxCols)[0] ?? {
      rowId,
      colId,
      prob: 0,
      lastUpdateTimeMs: ts,
    };
    if (table.size === 0) this.#forget(namespace, seed);
    this.#applied++;
    if (timestampClamped) this.#clamped++;
    return { status, bucket, timestampClamped };
  }

  getSeed(namespace: string, seed: bigint): BucketState[] {
    checkSeed(seed, "seed", this.options);
    return this.#namespaces.get(namespace)?.get(seed)?.buckets(this.options.maxCols) ?? [];
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
    this.#evictedSeeds += seeds;
    this.#evictedBuckets += buckets;
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
      appliedDeltas: this.#applied,
      droppedDeltas: { too_old: this.#tooOld, too_far_future: this.#tooFarFuture },
      clampedTimestamps: this.#clamped,
      evictedSeeds: this.#evictedSeeds,
      evictedBuckets: this.#evictedBuckets,
    };
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.#entries(), this.#now(), this.options.maxCols);
  }

  restore(bytes: Uint8Array): RestoreResult {
    const entries = decodeSnapshot(bytes, this.options);
    const now = this.#now();
    const namespaces = new Map<string, Map<bigint, SeedTable>>();
    let seeds = 0;
    let buckets = 0;
    for (const { namespace, seed, table } of entries) {
      // Expired seeds would only wait for the next eviction; far-future ones
      // could not have been written by a store on this clock.
      if (table.size === 0 || this.#range.classify(seed, now) !== "applied") continue;
      let tables = namespaces.get(namespace);
      if (tables === undefined) {
        tables = new Map();
        namespaces.set(namespace, tables);
      }
      tables.set(seed, table);
      seeds++;
      buckets += table.size;
    }
    this.#namespaces = namespaces;
    return { seeds, buckets, skippedSeeds: entries.length - seeds };
  }

  *#entries(): Generator<SeedEntry> {
    for (const [namespace, tables] of this.#namespaces) {
      for (const [seed, table] of tables) yield { namespace, seed, table };
    }
  }

  #now(): number {
    return readClock(this.options);
  }

  #drop(reason: Exclude<ApplyStatus, "applied">, count: number): void {
    if (reason === "too_old") this.#tooOld += count;
    else this.#tooFarFuture += count;
  }

  #table(namespace: string, seed: bigint): SeedTable {
    let tables = this.#namespaces.get(namespace);
    if (tables === undefined) {
      tables = new Map();
      this.#namespaces.set(namespace, tables);
    }
    let table = tables.get(seed);
    if (table === undefined) {
      table = new SeedTable();
      tables.set(seed, table);
    }
    return table;
  }

  #forget(namespace: string, seed: bigint): void {
    const tables = this.#namespaces.get(namespace);
    tables?.delete(seed);
    if (tables?.size === 0) this.#namespaces.delete(namespace);
  }
}
