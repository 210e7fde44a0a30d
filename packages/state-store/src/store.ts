import type {
  StoreChangeFeed,
  StoreEpochs,
  StoreMetrics,
  StorePersistence,
  StoreReadiness,
} from "./store-capabilities.js";

/**
 * What `applyUpdate` reads: a protobuf-es `DeltaUpdate`, or any object of
 * the same shape. A uint64 id or timestamp is a `bigint` (as protobuf-es
 * decodes it) or a non-negative integer `number` (as a hand-written decoder
 * may give it, sparing a bigint per field).
 */
export interface DeltaUpdateInput {
  /** Window start in Unix milliseconds. */
  readonly seed: bigint;
  readonly deltas: readonly BucketDeltaInput[];
}

/** One delta of a {@link DeltaUpdateInput}; the fields of the `BucketDelta` message. */
export interface BucketDeltaInput {
  readonly rowId: bigint | number;
  readonly colId: bigint | number;
  readonly deltaProb: number;
  readonly lastUpdateTimeMs: bigint | number;
}

/**
 * A value, or a promise of one. {@link Store} methods return it so that a
 * remote store (Redis) can be asynchronous while the in-memory one answers
 * synchronously and its callers need not pay for a promise per call.
 * Measured on the in-memory store (bench/main.ts, see the README): `await`
 * of the plain value adds ~0.5 µs to a ~29 µs batch of 100 deltas (~2 %), the
 * same as an always-async method would; so callers generic over `Store` may
 * simply `await`, and callers holding an `InMemoryStore` pay nothing.
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One bucket's aggregated value: its probability as of `lastUpdateTimeMs`.
 * At a later time `t` it is worth `prob · e^(−λ·max(0, t − lastUpdateTimeMs)/1000)`.
 * A plain object with numbers, ready for a `Bucket` message or a hub.
 */
export interface BucketState {
  /** The FAIR level, `0 ≤ rowId < maxRows`. */
  rowId: number;
  /** The bucket within its level, `0 ≤ colId < maxCols`. */
  colId: number;
  /** The probability, within [0, 1]. */
  prob: number;
  /** The time `prob` refers to, in Unix milliseconds. */
  lastUpdateTimeMs: number;
}

/**
 * Why deltas were set aside instead of applied, a label for metrics:
 * `too_old` — the seed is behind the eviction horizon (or was evicted);
 * `too_far_future` — the seed is more than `maxFutureWindows` windows ahead.
 * Neither is an error: the client is not at fault for a late or early
 * window, and one stray seed must not end its stream.
 */
export type DropReason = "too_old" | "too_far_future";

/**
 * The limits that refuse a valid update (with a `StoreError` of code
 * `limit_exceeded`), as metric labels: `max_seeds_per_namespace` — it would
 * add a live seed to a namespace already holding `maxSeedsPerNamespace`;
 * `max_buckets_per_seed` — it would leave its seed holding more than
 * `maxBucketsPerSeed` buckets; `max_namespaces` — it would put the first
 * bucket into a namespace while `maxNamespaces` others already hold some.
 */
export type StoreLimit = "max_seeds_per_namespace" | "max_buckets_per_seed" | "max_namespaces";

/** What became of an update or delta: applied, or set aside for a reason. */
export type ApplyStatus = "applied" | DropReason;

/** The answer to {@link StoreNamespace.applyUpdate}. */
export interface UpdateResult {
  /** `applied`, or why the whole update was set aside (and counted). */
  readonly status: ApplyStatus;
  /**
   * The buckets the update changed, each once, with its latest value; empty
   * unless applied. A delta that leaves a default bucket at 0 changes
   * nothing and is not listed; a bucket that falls to 0 is listed (with
   * prob 0) and then forgotten.
   */
  readonly buckets: BucketState[];
  /** How many of the update's timestamps were clamped to `now + maxClockSkewMs`. */
  readonly clampedTimestamps: number;
}

/**
 * A position within a seed's buckets, as {@link StoreNamespace.readSeed}
 * returned it: opaque, meaningful only to the store that made it.
 */
export type SeedCursor = string | number;

/** The answer to {@link StoreNamespace.readSeed}. */
export interface SeedPage {
  /** At most `limit` buckets, in no particular order. */
  readonly buckets: BucketState[];
  /** Where the next page starts; `undefined` when this one was the last. */
  readonly next: SeedCursor | undefined;
}

/** The answer to {@link StoreNamespace.applyDelta}. */
export interface DeltaResult {
  /** `applied`, or why the delta was set aside (and counted). */
  readonly status: ApplyStatus;
  /** The bucket after the delta; `undefined` unless applied. */
  readonly bucket: BucketState | undefined;
  /** Whether the timestamp was clamped to `now + maxClockSkewMs`. */
  readonly timestampClamped: boolean;
}

/** The answer to {@link Store.evictBefore}. */
export interface EvictResult {
  /** Seeds removed, over all namespaces. */
  readonly seeds: number;
  /** Buckets those seeds held. */
  readonly buckets: number;
}

/** The answer to {@link StorePersistence.restore}. */
export interface RestoreResult {
  /** Seeds now held. */
  readonly seeds: number;
  /** Buckets now held. */
  readonly buckets: number;
  /** Seeds in the snapshot left out: behind the eviction horizon or too far ahead. */
  readonly skippedSeeds: number;
  /**
   * The epoch the snapshot was taken in (`""` for a snapshot older than
   * epochs), for the logs: the restoring store keeps its own, new epoch.
   */
  readonly epoch: string;
  /** When the snapshot was taken (its `taken_at_ms`), Unix ms; `undefined` when it does not say. */
  readonly takenAtMs: number | undefined;
}

/** Counters and sizes for metrics; plain numbers, counters never go down. */
export interface StoreStats {
  /** Namespaces holding at least one seed. */
  readonly namespaces: number;
  /** Seeds held, over all namespaces. */
  readonly seeds: number;
  /** Non-default buckets held. */
  readonly buckets: number;
  /** Deltas applied since the store was made. */
  readonly appliedDeltas: number;
  /** Deltas set aside, by reason. */
  readonly droppedDeltas: Readonly<Record<DropReason, number>>;
  /**
   * Updates (or single deltas) refused whole for a limit, by limit; none of
   * their deltas count as applied or dropped.
   */
  readonly limitRefusals: Readonly<Record<StoreLimit, number>>;
  /** Applied deltas whose timestamp was clamped to `now + maxClockSkewMs`. */
  readonly clampedTimestamps: number;
  /** Seeds removed by eviction. */
  readonly evictedSeeds: number;
  /** Buckets removed by eviction. */
  readonly evictedBuckets: number;
  /**
   * State offers (learning mode), by what became of them: `applied` (merged;
   * whether or not a bucket changed), `learning_over` (refused: the epoch was
   * older than `learningPeriodMs`), `too_old`, `too_far_future` (the seed is
   * outside the live range). Counted per offer message, not per bucket.
   */
  readonly offers: Readonly<Record<OfferStatus, number>>;
}

/**
 * What `applyOffer` reads: a protobuf-es `StateOffer`, or any object of the
 * same shape. Ids and times are `bigint` or non-negative integer `number`s,
 * as in {@link DeltaUpdateInput}.
 */
export interface StateOfferInput {
  /** Window start in Unix milliseconds. */
  readonly seed: bigint;
  readonly buckets: readonly BucketInput[];
}

/** One bucket of a {@link StateOfferInput}: an absolute value as of its own time. */
export interface BucketInput {
  readonly rowId: bigint | number;
  readonly colId: bigint | number;
  /** Within [0, 1]. */
  readonly prob: number;
  readonly lastUpdateTimeMs: bigint | number;
}

/** What became of an offer: merged, refused once learning is over, or dropped for its seed. */
export type OfferStatus = "applied" | "learning_over" | DropReason;

/** The answer to {@link StoreNamespace.applyOffer}. */
export interface OfferResult {
  readonly status: OfferStatus;
  /** The buckets the offer raised, each once, with its new value; empty unless applied. */
  readonly buckets: BucketState[];
}

/**
 * One isolated key space of a {@link Store}: the `fair-state-namespace`
 * header selects it. Every operation is keyed by seed, the window start in
 * Unix milliseconds, kept exact as a `bigint`.
 */
export interface StoreNamespace {
  /**
   * Applies a whole `DeltaUpdate` — the server's hot path. The update is
   * validated first; a bad one throws a {@link StoreError} naming the field
   * (`deltas[3].delta_prob`) and nothing of it is applied. Several deltas for
   * one bucket apply in order.
   */
  applyUpdate(update: DeltaUpdateInput): MaybePromise<UpdateResult>;
  /**
   * Applies one delta `a` stamped `timestampMs` to bucket `(seed, rowId,
   * colId)`, with the same checks as {@link StoreNamespace.applyUpdate}.
   */
  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): MaybePromise<DeltaResult>;
  /** Every non-default bucket of `seed`, in no particular order; `[]` for an unknown seed. */
  getSeed(seed: bigint): MaybePromise<BucketState[]>;
  /**
   * One page of `seed`'s buckets: at most `limit` of them, starting at
   * `cursor` (`undefined` for the first page), with the cursor of the next
   * page (`undefined` after the last). A server answers a `StateRequest`
   * with one page per message, read only when the stream can take it, so a
   * seed of any size costs one page of memory and one page of work at a
   * time. While a read goes on the seed may change: a bucket held throughout
   * is listed at least once (a store should list it exactly once), with a
   * value at least as new as when the read began; buckets added or removed
   * meanwhile may or may not be listed. An unknown seed is one empty page.
   * Throws a `StoreError` for a seed that is not a window start, a cursor
   * this store did not return or a `limit` under 1.
   */
  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): MaybePromise<SeedPage>;
  /**
   * Merges a client's view of one seed into the store (learning mode, after
   * an epoch change): for each offered bucket `(q, u)` against the stored
   * `(p, t)`, both are decayed to `T = max(t, u)` and the larger is kept,
   * stamped `T` — a maximum, never a sum, so offering the same view any
   * number of times, by any number of clients, in any order, leaves the
   * store as one offer would. Validated whole first, like `applyUpdate`
   * (a bad offer throws a `StoreError` naming the field and changes
   * nothing); timestamps past `now + maxClockSkewMs` are clamped; the seed and
   * namespace limits apply. Accepted only while the store's epoch is no older
   * than `learningPeriodMs`: later it is refused (`learning_over`), counted,
   * and changes nothing. Seeds outside the live range are dropped and
   * counted, as deltas are.
   */
  applyOffer(offer: StateOfferInput): MaybePromise<OfferResult>;
}

/**
 * The aggregation store: all a server knows of where the shared state lives.
 * `InMemoryStore` implements it in one process, `@fair/state-store-redis` on
 * Redis for several replicas. A `Store` is its default namespace (`""`)
 * plus the way to the others, a lifecycle, and optional capabilities a
 * backend may offer — each discovered by its presence, never by class:
 * {@link StoreReadiness} (`readiness`), {@link StoreChangeFeed} (`changes`),
 * {@link StorePersistence} (`persistence`) and {@link StoreMetrics}
 * (`registerMetrics`).
 *
 * @example
 * ```ts
 * function serve(store: Store) {
 *   store.registerMetrics?.(registry);
 *   store.start();
 *   const publishesItself = store.changes !== undefined;
 *   const serving = () => store.readiness?.ready ?? true;
 * }
 * ```
 */
export interface Store extends StoreNamespace, Partial<StoreMetrics> {
  /**
   * The key space called `name`; `""` is the store itself. Cheap and
   * allocation-light: a server takes one per stream.
   */
  namespace(name: string): StoreNamespace;
  /**
   * Removes every seed below `seed` in every namespace; deltas for those
   * seeds are dropped (`too_old`) from then on.
   */
  evictBefore(seed: bigint): MaybePromise<EvictResult>;
  /** Sizes and counters, for metrics. */
  stats(): MaybePromise<StoreStats>;
  /**
   * Starts the store's background work: evicting expired seeds on its timer,
   * and for a remote store connecting (and reconnecting until stopped).
   * Returns at once; a no-op when started. Aborting `signal` stops the
   * store, as `stop()` does.
   */
  start(signal?: AbortSignal): void;
  /**
   * Stops the background work and lets go of connections; idempotent.
   * Resolves (when it returns a promise) once nothing of the store is left
   * running.
   */
  stop(): MaybePromise<void>;
  /** Present when the store can be unable to serve; see {@link StoreReadiness}. */
  readonly readiness?: StoreReadiness;
  /** Present when other servers change the shared view too; see {@link StoreChangeFeed}. */
  readonly changes?: StoreChangeFeed;
  /** Present when the store can be snapshotted and restored; see {@link StorePersistence}. */
  readonly persistence?: StorePersistence;
  /** Present when the store knows the lifetime of its state; see {@link StoreEpochs}. */
  readonly epochs?: StoreEpochs;
  /**
   * How the store names itself in a server's logs, e.g.
   * `{ store: "redis", replicaId: "3f9a…" }`. Default: nothing.
   */
  readonly description?: Readonly<Record<string, string>>;
}
