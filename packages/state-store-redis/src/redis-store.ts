import {
  type BucketState,
  type ChangeListener,
  type DeltaResult,
  type DeltaUpdateInput,
  type EvictResult,
  isLearning,
  type OfferResult,
  type SeedCursor,
  type SeedPage,
  type StateOfferInput,
  type Store,
  type StoreChangeFeed,
  type StoreEpochs,
  StoreError,
  type StoreLimit,
  type StoreNamespace,
  type StoreReadiness,
  type StoreStats,
  type UpdateResult,
} from "@fair/state-store";
import {
  checkSeed,
  DeltaBatch,
  limitExceededError,
  readStoreClock,
  SeedRange,
  StoreCounters,
  validateDelta,
  validateOffer,
  validateUpdate,
} from "@fair/state-store/internal";
import type { Redis } from "ioredis";
import type { Registry } from "prom-client";
import { Coalescer } from "./coalescer.js";
import { type Connections, openConnections, type RedisClient } from "./connections.js";
import { type Entries, entryBytes, type GroupCall, groupEntries } from "./entry-args.js";
import { EpochKeeper, EpochMoved, epochNoticePrefix, parseEpoch } from "./epoch.js";
import {
  countBuckets,
  evictGroups,
  readSeedPage,
  readSeedWhole,
  rereadGroup,
  runScript,
} from "./group-reads.js";
import { encodeNamespace, KeyLayout, padSeed, type SlotGroup, seedField } from "./keys.js";
import { type ChangeMessage, messageHeader, parseMessage } from "./message.js";
import { registerRedisMetrics } from "./metrics.js";
import {
  type RedisStoreOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
} from "./options.js";
import { Relay, type RelayCounters } from "./relay.js";
import { applyScript, epochScript, type LuaScript, offerScript } from "./scripts.js";
import { parseSeedCursor, scanStart } from "./seed-cursor.js";

/** What the store asks Redis for, as a label for latency and error metrics. */
export type RedisOperation =
  | "apply"
  | "offer"
  | "get_seed"
  | "read_seed"
  | "evict"
  | "stats"
  | "reread"
  | "subscribe"
  | "epoch";

const operations: readonly RedisOperation[] = [
  "apply",
  "offer",
  "get_seed",
  "read_seed",
  "evict",
  "stats",
  "reread",
  "subscribe",
  "epoch",
];

/** Called with each Redis operation's duration in milliseconds and whether it succeeded. */
export type OperationListener = (
  operation: RedisOperation,
  durationMs: number,
  ok: boolean,
) => void;

/** Counters of the Redis side, plain numbers that only grow (for metrics). */
export interface RedisStats extends Readonly<RelayCounters> {
  /** Failed Redis operations, by operation. */
  readonly errors: Readonly<Record<RedisOperation, number>>;
  /** Times the store lost readiness (a connection dropped) after being ready. */
  readonly disconnects: number;
  /**
   * Times another Redis server answered after a reconnect (a restart, a
   * Sentinel failover; not counted on a Cluster): the relay started over.
   */
  readonly redisRestarts: number;
  /** Resyncs after (re)subscribing: every slot group read back. */
  readonly resyncs: number;
  /**
   * Times the state epoch changed after the first one was learned: the
   * epoch key was found missing (Redis lost its data) or replaced.
   */
  readonly epochChanges: number;
}

/**
 * A namespace of a {@link RedisStore}: the {@link StoreNamespace} operations,
 * always asynchronous.
 */
export interface RedisNamespace extends StoreNamespace {
  applyUpdate(update: DeltaUpdateInput): Promise<UpdateResult>;
  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult>;
  getSeed(seed: bigint): Promise<BucketState[]>;
  /**
   * One page of `seed`'s buckets, as {@link StoreNamespace.readSeed}
   * describes: each slot group in turn, in it each row of the seed with
   * `HSCAN`, at most `limit` buckets per page and never a whole row at once.
   * The cursor is a string. Because `HSCAN` may return a field twice (when
   * Redis resizes the hash during the read), a bucket may be listed on two
   * pages, each time with the value it had then; and a page before the last
   * may hold fewer than `limit` buckets, even none.
   */
  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): Promise<SeedPage>;
  /**
   * Merges an offer, as {@link StoreNamespace.applyOffer} describes, in one
   * Lua script per slot group (atomic per group, like an update). Refused with `unavailable` while
   * the store has not yet learned its epoch; buckets it raises reach every
   * replica's change feed, as an update's do.
   */
  applyOffer(offer: StateOfferInput): Promise<OfferResult>;
}

/** What a namespace view calls into; private to the store. */
interface NamespaceOps {
  apply(ns: NamespaceView, update: DeltaUpdateInput): Promise<UpdateResult>;
  offer(ns: NamespaceView, offer: StateOfferInput): Promise<OfferResult>;
  applyOne(
    ns: NamespaceView,
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult>;
  read(ns: NamespaceView, seed: bigint): Promise<BucketState[]>;
  page(
    ns: NamespaceView,
    seed: bigint,
    cursor: SeedCursor | undefined,
    limit: number,
  ): Promise<SeedPage>;
}

/** What a script call came to: its change message (or none), the group's count for the seed. */
type CallReply =
  | { readonly kind: "ok"; readonly message: ChangeMessage | null; readonly held: number }
  | { readonly kind: "too_old" };

/**
 * The {@link Store} on Redis (or Valkey) 7+, shared by several stateless
 * server replicas: buckets in slot groups (one hash per column block, the
 * keys of a group sharing one hash tag, so one Redis Cluster node holds a
 * group), one Lua script per group of an update applied atomically with
 * the in-memory store's exact arithmetic, `PEXPIRE` as eviction, and a
 * change message each script publishes on its group's sharded channel,
 * which every replica relays to its own streams (see
 * {@link RedisStore.onChange}). Keys and semantics: docs/decisions/0011.
 *
 * A class because it has a lifecycle: `start()` connects (and keeps
 * reconnecting), `stop()` disconnects. While Redis cannot be reached,
 * operations reject with a `StoreError` of code `unavailable` and
 * {@link RedisStore.ready} is false.
 *
 * Of the `Store` contract's optional capabilities it offers readiness
 * ({@link RedisStore.readiness}), a change feed ({@link RedisStore.changes}),
 * epochs ({@link RedisStore.epochs}: one epoch key per key prefix, renewed
 * when Redis loses its data) and metrics of its own
 * ({@link RedisStore.registerMetrics}); Redis keeps the data, so there is no
 * snapshot to take.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ url: "redis://127.0.0.1:6379", keyPrefix: "fair:" });
 * store.onChange((namespace, seed, buckets) => hub.publish(namespace, seed, buckets));
 * store.start();
 * await store.whenReady();
 * const { buckets } = await store.namespace("checkout").applyUpdate(update);
 * await store.stop();
 * ```
 */
export class RedisStore implements Store, RedisNamespace, StoreReadiness, StoreChangeFeed {
  readonly #options: ResolvedRedisOptions;
  readonly #keys: KeyLayout;
  readonly #range: SeedRange;
  readonly #batch = new DeltaBatch();
  readonly #relay: Relay;
  readonly #coalescer: Coalescer<NamespaceView> | undefined;
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #readyListeners = new Set<(ready: boolean) => void>();
  readonly #operationListeners = new Set<OperationListener>();
  readonly #namespaces = new Map<string, NamespaceView>();
  readonly #ops: NamespaceOps = {
    apply: (ns, update) => this.#apply(ns, update),
    offer: (ns, offer) => this.#offer(ns, offer),
    applyOne: (ns, seed, rowId, colId, deltaProb, timestampMs) =>
      this.#applyOne(ns, seed, rowId, colId, deltaProb, timestampMs),
    read: (ns, seed) => this.#read(ns, seed),
    page: (ns, seed, cursor, limit) => this.#readPage(ns, seed, cursor, limit),
  };
  /**
   * Each live seed's buckets per group as this replica last saw them
   * (`<ns>|<seed>` → count by group): what the scripts count as "the other
   * groups" for maxBucketsPerSeed.
   */
  readonly #seedCounts = new Map<string, { readonly seed: bigint; readonly held: number[] }>();
  #connections: Connections | undefined;
  #stopped = false;
  #ready = false;
  #notReadyReason = "not started";
  /** The last connection error, for the reason readiness gives. */
  #lastError: string | undefined;
  #subscribed = false;
  #runId: string | undefined;
  #subscribeAttempt = 0;
  #sweep: unknown;
  /** A Cluster subscription to try again after it failed. */
  #resubscribe: unknown;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => void this.stop();
  readonly #counters = new StoreCounters();
  #disconnects = 0;
  #redisRestarts = 0;
  #resyncs = 0;
  /** Follows the epoch key; a script may run through the subscriber before it subscribes. */
  readonly #epoch: EpochKeeper<RedisClient>;
  readonly #errors = Object.fromEntries(operations.map((op) => [op, 0])) as Record<
    RedisOperation,
    number
  >;

  /** Throws a `StoreError` (`invalid_option`) naming the first unusable option. */
  constructor(options: Partial<RedisStoreOptions> = {}) {
    this.#options = resolveRedisOptions(options);
    this.#keys = new KeyLayout(this.#options.keyPrefix, this.#options.slotGroups);
    this.#range = new SeedRange(this.#options.rules);
    this.#relay = new Relay({
      replicaId: this.#options.replicaId,
      deliver: (namespace, seed, buckets) => {
        for (const listener of this.#changeListeners) listener(namespace, seed, buckets);
      },
      reread: (group) => void this.#reread(group),
    });
    const { flushIntervalMs, rules } = this.#options;
    if (flushIntervalMs > 0) {
      this.#coalescer = new Coalescer({
        intervalMs: flushIntervalMs,
        decayPerMs: rules.decayPerMs,
        timers: rules.timers,
        apply: (ns, seed, entries, count) =>
          this.#applyEntries(ns, seed, entries, count, Number.POSITIVE_INFINITY),
      });
    }
    this.#epoch = new EpochKeeper({
      key: this.#keys.epoch,
      read: () => this.#run("epoch", (redis) => redis.get(this.#keys.epoch)),
      create: async (value, via) => {
        const create = async (redis: RedisClient) =>
          String(
            await runScript(
              redis,
              epochScript,
              [this.#keys.epoch],
              [value, this.#keys.epochChannel],
            ),
          );
        return via ? create(via) : this.#run("epoch", create);
      },
      now: () => readStoreClock(this.#options.rules),
      replaced: () => this.#relay.reset(),
      adopted: (replaced, resync) => {
        this.#updateReady();
        if (replaced && resync) void this.#resync();
      },
    });
  }

  /** The options in effect, defaults filled in (the URL as given). */
  get options(): Readonly<ResolvedRedisOptions> {
    return this.#options;
  }

  /** This replica's id in the messages it publishes. */
  get replicaId(): string {
    return this.#options.replicaId;
  }

  /** How the store names itself in a server's logs: `{ store: "redis", replicaId }`. */
  get description(): Readonly<Record<string, string>> {
    return { store: "redis", replicaId: this.replicaId };
  }

  /** Readiness, for the server's health: this store itself ({@link RedisStore.ready}, {@link RedisStore.onReadyChange}). */
  get readiness(): StoreReadiness {
    return this;
  }

  /** The change feed of every replica's applies: this store itself ({@link RedisStore.onChange}). */
  get changes(): StoreChangeFeed {
    return this;
  }

  /**
   * The state epoch every replica on this key prefix shares, kept in Redis
   * (`<prefix>epoch`): `current` is `undefined` until the store first reads
   * it (the store is not ready before), and listeners hear of every epoch
   * adopted, the first one included. A new epoch begins when a replica finds
   * the key missing — Redis restarted empty, was flushed, or the prefix was
   * deleted — on (re)connecting, in a script, or on re-reading rows; it
   * creates the new one and announces it, and every replica adopts the one
   * that won. A Redis that comes back with its data keeps its epoch.
   */
  get epochs(): StoreEpochs {
    return this.#epoch.view;
  }

  /**
   * True while both connections are up, the change channel is subscribed
   * and the epoch is known: what a server reports as SERVING.
   */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Why the store is not ready (`"not started"`, `"cannot reach Redis at
   * 10.0.0.5:6379: connect ECONNREFUSED …"`, `"reading the state epoch"`,
   * `"subscribing to the change channel"`, `"stopped"`); `undefined` while
   * ready.
   */
  get notReadyReason(): string | undefined {
    return this.#ready ? undefined : this.#notReadyReason;
  }

  /**
   * Registers this store's metrics on a server's registry: Redis latency
   * and errors by operation, the relay between replicas, disconnects and
   * Redis restarts (`fair_state_redis_*`, `fair_state_relay_*`).
   */
  registerMetrics(registry: Registry): void {
    registerRedisMetrics(registry, {
      stats: () => this.redisStats(),
      onOperation: (listener) => this.onOperation(listener),
    });
  }

  /**
   * Connects to Redis and keeps reconnecting until `stop()`; starts the
   * eviction sweep. Returns at once: watch {@link RedisStore.ready},
   * {@link RedisStore.onReadyChange} or {@link RedisStore.whenReady}.
   * Aborting `signal` stops the store, as `stop()` does.
   */
  start(signal?: AbortSignal): void {
    if (this.#connections !== undefined || this.#stopped || signal?.aborted) return;
    const connections = openConnections(this.#options, this.replicaId);
    this.#connections = connections;
    const { command, subscriber } = connections;
    command.on("ready", this.#updateReady);
    command.on("close", this.#updateReady);
    // An "error" event without a listener would crash the process; the
    // failures it reports surface as failed operations and readiness.
    command.on("error", this.#onConnectionError);
    subscriber.on("error", this.#onConnectionError);
    subscriber.on("ready", this.#onSubscriberReady);
    subscriber.on("close", this.#onSubscriberClose);
    subscriber.on("smessageBuffer", this.#onMessage);
    // A Cluster's sharded subscriber for a shard came back (a failover, a
    // new node): messages of its groups may be lost meanwhile.
    subscriber.on("+subscriber", this.#onShardSubscriber);
    this.#updateReady();
    command.connect().catch(noop);
    subscriber.connect().catch(noop);
    const { timers, evictionIntervalMs } = this.#options.rules;
    this.#sweep = timers.setInterval(() => void this.#evictExpired(), evictionIntervalMs);
    if (signal !== undefined) {
      this.#signal = signal;
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /**
   * Sends what the coalescer holds, then disconnects both connections and
   * stops the sweep; idempotent. A stopped store stays stopped. Operations
   * fail with `unavailable` from here on, and epoch listeners are let go.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    await this.#coalescer?.flush();
    this.#stopped = true;
    this.#epoch.clear();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
    if (this.#sweep !== undefined) this.#options.rules.timers.clearInterval(this.#sweep);
    this.#sweep = undefined;
    if (this.#resubscribe !== undefined) this.#options.rules.timers.clearTimeout(this.#resubscribe);
    this.#resubscribe = undefined;
    const connections = this.#connections;
    this.#updateReady();
    if (connections === undefined) return;
    const { command, subscriber } = connections;
    // QUIT lets replies in flight arrive; disconnect() ends reconnect timers either way.
    await Promise.allSettled([command.quit(), subscriber.quit()]);
    command.disconnect();
    subscriber.disconnect();
    for (const connection of [command, subscriber]) connection.removeAllListeners();
    command.on("error", noop);
    subscriber.on("error", noop);
  }

  /** Resolves once the store is ready; rejects if `signal` aborts or the store stops first. */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        this.#readyListeners.delete(onReady);
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onReady = (ready: boolean) => {
        if (ready) done();
        else if (this.#stopped) done(unavailable("whenReady", "the store was stopped"));
      };
      const onAbort = () => done(unavailable("whenReady", "aborted"));
      if (signal?.aborted || this.#stopped) {
        onAbort();
        return;
      }
      this.#readyListeners.add(onReady);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Listens to every change of the shared view this replica learns of, in
   * order per bucket: its own applies and the other replicas'. A server
   * hands them to its broadcast hub — and so must not publish an
   * `applyUpdate` result itself. Returns the way to stop listening.
   */
  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Listens to readiness changes. Returns the way to stop listening. */
  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.#readyListeners.add(listener);
    return () => this.#readyListeners.delete(listener);
  }

  /** Listens to every Redis operation's duration, for a latency histogram. */
  onOperation(listener: OperationListener): () => void {
    this.#operationListeners.add(listener);
    return () => this.#operationListeners.delete(listener);
  }

  /** Redis-side counters: errors, relay, reconnects. */
  redisStats(): RedisStats {
    return {
      ...this.#relay.counters,
      errors: { ...this.#errors },
      disconnects: this.#disconnects,
      redisRestarts: this.#redisRestarts,
      resyncs: this.#resyncs,
      epochChanges: this.#epoch.replacements,
    };
  }

  /** The key space `name` (the `fair-state-namespace` header); `""` is this store. */
  namespace(name: string): RedisNamespace {
    if (typeof name !== "string") {
      throw new StoreError("invalid_argument", "namespace", `must be a string, got ${typeof name}`);
    }
    let view = this.#namespaces.get(name);
    if (view === undefined) {
      view = new NamespaceView(this.#ops, name, encodeNamespace(name));
      // A view is a few fields; bound the cache rather than grow with every name ever seen.
      if (this.#namespaces.size >= 1024) this.#namespaces.clear();
      this.#namespaces.set(name, view);
    }
    return view;
  }

  applyUpdate(update: DeltaUpdateInput): Promise<UpdateResult> {
    return this.namespace("").applyUpdate(update);
  }

  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult> {
    return this.namespace("").applyDelta(seed, rowId, colId, deltaProb, timestampMs);
  }

  getSeed(seed: bigint): Promise<BucketState[]> {
    return this.namespace("").getSeed(seed);
  }

  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): Promise<SeedPage> {
    return this.namespace("").readSeed(seed, cursor, limit);
  }

  applyOffer(offer: StateOfferInput): Promise<OfferResult> {
    return this.namespace("").applyOffer(offer);
  }

  /**
   * Removes every seed below `seed` in every namespace, for every replica:
   * the floor it raises in each slot group makes each replica's script drop
   * late deltas for those seeds (`too_old`). Keys also expire on their own
   * when their seed leaves the horizon; this sweeps the indexes and counts.
   */
  async evictBefore(seed: bigint): Promise<EvictResult> {
    if (typeof seed !== "bigint") {
      throw new StoreError("invalid_argument", "seed", `must be a bigint, got ${typeof seed}`);
    }
    this.#range.evictBefore(seed);
    const evicted = await this.#run("evict", (redis) =>
      evictGroups(redis, this.#keys, padSeed(seed), String(Number(seed))),
    );
    let buckets = 0;
    for (const count of evicted.values()) buckets += count;
    this.#counters.evicted(evicted.size, buckets);
    for (const [field, entry] of this.#seedCounts) {
      if (entry.seed < seed) this.#seedCounts.delete(field);
    }
    return { seeds: evicted.size, buckets };
  }

  /**
   * Sizes from Redis and this replica's counters. Seeds, buckets and
   * namespaces are read from each slot group's counts (kept exact by the
   * scripts), so they cover every replica; a seed whose keys Redis expired
   * a moment ago may still be counted until the next sweep. The counters
   * (applied, dropped, clamped, evicted) are this replica's: sum them over
   * replicas.
   */
  async stats(): Promise<StoreStats> {
    const horizon = this.#range.horizon(readStoreClock(this.#options.rules));
    const held = await this.#run("stats", (redis) => countBuckets(redis, this.#keys, horizon));
    const namespaces = new Set<string>();
    let buckets = 0;
    for (const [field, count] of held) {
      buckets += count;
      namespaces.add(field.slice(0, field.lastIndexOf("|")));
    }
    return {
      namespaces: namespaces.size,
      seeds: held.size,
      buckets,
      ...this.#counters.counts(),
    };
  }

  /** Applies a whole update: one script call per slot group it touches, or the coalescer's next flush. */
  async #apply(ns: NamespaceView, update: DeltaUpdateInput): Promise<UpdateResult> {
    const batch = this.#batch;
    validateUpdate(update, this.#options.rules, batch);
    const seed = update.seed;
    const count = batch.length;
    const now = readStoreClock(this.#options.rules);
    const status = this.#range.classify(seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, count);
      return { status, buckets: [], clampedTimestamps: 0 };
    }
    if (count === 0) return { status, buckets: [], clampedTimestamps: 0 };
    const latest = this.#range.latestTimestamp(now);
    if (this.#coalescer === undefined) {
      // Everything the scripts need is taken from the reused batch before
      // the first await, so concurrent applies cannot see each other's batch.
      const result = this.#counted(await this.#applyEntries(ns, seed, batch, count, latest), count);
      return {
        status: result.status,
        buckets: result.buckets,
        clampedTimestamps: result.clampedTimestamps,
      };
    }
    let clamped = 0;
    const times = batch.times;
    for (let i = 0; i < count; i++) {
      if ((times[i] as number) > latest) {
        times[i] = latest;
        clamped++;
      }
    }
    this.#counters.clamped += clamped;
    const result = await this.#coalescer.add(ns.encoded, ns, seed, batch, count);
    // Counted as the update's deltas, not the summed entries that went to Redis.
    if (result.status === "applied") this.#counters.applied += count;
    else this.#counters.drop("too_old", count);
    return { status: result.status, buckets: result.buckets, clampedTimestamps: clamped };
  }

  /**
   * Runs the apply script for `count` entries of one (namespace, seed), one
   * call per slot group, timestamps past `latest` clamped; `applied` counts
   * the entries of calls not dropped as `too_old` (a group's floor passed
   * the seed). The caller counts.
   */
  async #applyEntries(
    ns: NamespaceView,
    seed: bigint,
    entries: Entries,
    count: number,
    latest: number,
  ): Promise<UpdateResult & { readonly applied: number }> {
    const now = readStoreClock(this.#options.rules);
    const { calls, clamped } = this.#group(ns, seed, entries, count, latest);
    const { applied, messages } = await this.#runCalls("apply", applyScript, ns, seed, now, calls);
    if (applied === 0) return { status: "too_old", buckets: [], clampedTimestamps: 0, applied };
    return {
      status: "applied",
      buckets: messages.flatMap((message) => message.buckets),
      clampedTimestamps: clamped,
      applied,
    };
  }

  /** Counts what #applyEntries did with `count` entries sent at once: applied, clamped, the rest dropped. */
  #counted<T extends { readonly applied: number; readonly clampedTimestamps: number }>(
    result: T,
    count: number,
  ): T {
    this.#counters.applied += result.applied;
    this.#counters.clamped += result.clampedTimestamps;
    if (result.applied < count) this.#counters.drop("too_old", count - result.applied);
    return result;
  }

  /** Applies one delta, as a one-entry update. */
  async #applyOne(
    ns: NamespaceView,
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult> {
    validateDelta(seed, rowId, colId, deltaProb, timestampMs, this.#options.rules);
    const now = readStoreClock(this.#options.rules);
    const status = this.#range.classify(seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, 1);
      return { status, bucket: undefined, timestampClamped: false };
    }
    const latest = this.#range.latestTimestamp(now);
    const timestampClamped = timestampMs > latest;
    const ts = timestampClamped ? latest : timestampMs;
    const key = rowId * this.#options.rules.maxCols + colId;
    const entries = { keys: [key], deltas: [deltaProb], times: [timestampMs] };
    const result = this.#counted(await this.#applyEntries(ns, seed, entries, 1, latest), 1);
    if (result.status !== "applied") {
      return { status: result.status, bucket: undefined, timestampClamped: false };
    }
    // A delta that leaves a default bucket at 0 is applied all the same:
    // {0, ts} is what the formula gives, and nothing is stored.
    const bucket = result.buckets[0] ?? { rowId, colId, prob: 0, lastUpdateTimeMs: ts };
    return { status, bucket, timestampClamped };
  }

  /**
   * Merges an offer, one script call per slot group (learning mode):
   * validated whole, then refused while the epoch is unknown
   * (`unavailable`) or older than `learningPeriodMs` (`learning_over`),
   * dropped for a seed outside the live range, else merged by the offer
   * script — which checks that the epoch the decision was made in is still
   * the one the group holds.
   */
  async #offer(ns: NamespaceView, offer: StateOfferInput): Promise<OfferResult> {
    const batch = this.#batch;
    validateOffer(offer, this.#options.rules, batch);
    const seed = offer.seed;
    const count = batch.length;
    const now = readStoreClock(this.#options.rules);
    const refused = this.#refuseOffer(seed, now);
    if (refused !== undefined) return refused;
    if (count === 0) {
      this.#counters.offer("applied");
      return { status: "applied", buckets: [] };
    }
    // Taken from the reused batch before the first await, as in #apply.
    const latest = this.#range.latestTimestamp(now);
    const { calls } = this.#group(ns, seed, batch, count, latest);
    const { applied, messages } = await this.#runCalls(
      "offer",
      offerScript,
      ns,
      seed,
      now,
      calls,
      () => this.#refuseOffer(seed, now),
    );
    if (applied === 0 && messages.length === 0) {
      this.#counters.offer("too_old");
      return { status: "too_old", buckets: [] };
    }
    this.#counters.offer("applied");
    return { status: "applied", buckets: messages.flatMap((message) => message.buckets) };
  }

  /**
   * Why an offer is not merged at `now`, counted, or `undefined` when it is:
   * learning is over (the epoch began more than `learningPeriodMs` ago), or
   * the seed is outside the live range. Throws `unavailable` while the epoch
   * is not known.
   */
  #refuseOffer(seed: bigint, now: number): OfferResult | undefined {
    const epoch = this.#epoch.current;
    if (epoch === undefined) {
      this.#errors.offer++;
      throw unavailable("offer", `the store is not ready (${this.#notReadyReason})`);
    }
    if (!isLearning(epoch, now, this.#options.rules.learningPeriodMs)) {
      this.#counters.offer("learning_over");
      return { status: "learning_over", buckets: [] };
    }
    const status = this.#range.classify(seed, now);
    if (status === "applied") return undefined;
    this.#counters.offer(status);
    return { status, buckets: [] };
  }

  /** The entries split by slot group. */
  #group(ns: NamespaceView, seed: bigint, entries: Entries, count: number, latest: number) {
    const { maxCols } = this.#options.rules;
    return groupEntries(
      entries,
      count,
      maxCols,
      latest,
      seedField(ns.encoded, seed),
      this.#options.slotGroups,
    );
  }

  /** Every non-default bucket of one (namespace, seed). */
  async #read(ns: NamespaceView, seed: bigint): Promise<BucketState[]> {
    checkSeed(seed, "seed", this.#options.rules);
    return this.#run("get_seed", (redis) => readSeedWhole(redis, this.#keys, ns.encoded, seed));
  }

  /** One page of one (namespace, seed) (group-reads.ts reads, seed-cursor.ts has the cursor). */
  async #readPage(
    ns: NamespaceView,
    seed: bigint,
    cursor: SeedCursor | undefined,
    limit: number,
  ): Promise<SeedPage> {
    checkSeed(seed, "seed", this.#options.rules);
    const start =
      cursor === undefined ? scanStart : parseSeedCursor(cursor, this.#keys.groups.length);
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
      throw new StoreError("invalid_argument", "limit", `must be an integer ≥ 1, got ${limit}`);
    }
    return this.#run("read_seed", (redis) =>
      readSeedPage(redis, this.#keys, ns.encoded, seed, start, limit, pageCalls),
    );
  }

  /**
   * Runs a script for each group's call, concurrently; each call follows
   * the epoch when its group holds another. Resolves with the entries
   * applied (those of calls not dropped as `too_old`) and the change
   * messages, which the relay has; rejects with the first refusal for a
   * limit once every call has settled. `refuse`, for offers, decides again
   * after a new epoch was adopted.
   */
  async #runCalls(
    operation: RedisOperation,
    script: LuaScript,
    ns: NamespaceView,
    seed: bigint,
    now: number,
    calls: readonly GroupCall[],
    refuse?: () => OfferResult | undefined,
  ): Promise<{ applied: number; messages: ChangeMessage[] }> {
    const settled = await Promise.allSettled(
      calls.map((call) => this.#runInEpoch(operation, script, ns, seed, now, call, refuse)),
    );
    let applied = 0;
    const messages: ChangeMessage[] = [];
    let failure: unknown;
    settled.forEach((outcome, i) => {
      if (outcome.status === "rejected") {
        failure ??= outcome.reason;
        return;
      }
      const reply = outcome.value;
      if (reply === undefined || reply.kind === "too_old") return;
      applied += (calls[i] as GroupCall).packed.length / entryBytes;
      if (reply.message !== null) {
        this.#relay.own(reply.message);
        messages.push(reply.message);
      }
    });
    if (failure !== undefined) {
      // With several groups the others may have applied their parts: count them.
      if (operation === "apply") this.#counters.applied += applied;
      throw failure;
    }
    return { applied, messages };
  }

  /**
   * Runs one group's call in the current epoch. When the group holds
   * another epoch than this replica's, reads the state epoch: if it is this
   * replica's, the group was only behind (new, or its data lost) and the
   * call is made again with "force"; else the new epoch is followed and the
   * call made in it — at most four calls in all, then `unavailable`.
   * `undefined` when `refuse` turned the call away after a new epoch.
   */
  async #runInEpoch(
    operation: RedisOperation,
    script: LuaScript,
    ns: NamespaceView,
    seed: bigint,
    now: number,
    call: GroupCall,
    refuse?: () => OfferResult | undefined,
  ): Promise<CallReply | undefined> {
    let force = false;
    for (let attempt = 1; ; attempt++) {
      const reply = await this.#runGroup(operation, script, ns, seed, now, call, force);
      if (!(reply instanceof EpochMoved)) return reply;
      if (attempt >= 4) {
        this.#errors[operation]++;
        throw unavailable(operation, "the state epoch kept changing");
      }
      const changes = this.#epoch.changes;
      const stored = await this.#run("epoch", (redis) => redis.get(this.#keys.epoch));
      if (stored !== null && stored === this.#epoch.text) {
        force = true;
        continue;
      }
      force = false;
      try {
        await this.#epoch.learn(stored, changes);
      } catch (error) {
        this.#errors[operation]++;
        throw unavailable(operation, error instanceof Error ? error.message : String(error));
      }
      if (refuse?.() !== undefined) return undefined;
    }
  }

  /**
   * Runs the apply or offer script once for one group. An
   * {@link EpochMoved} when the group held another epoch (nothing was
   * written); rejects with `limit_exceeded` when the script refused the
   * call for a limit.
   */
  async #runGroup(
    operation: RedisOperation,
    script: LuaScript,
    ns: NamespaceView,
    seed: bigint,
    now: number,
    call: GroupCall,
    force: boolean,
  ): Promise<CallReply | EpochMoved> {
    const keys = this.#keys;
    const group = keys.groups[call.group] as SlotGroup;
    const { rules } = this.#options;
    const field = seedField(ns.encoded, seed);
    // Every key of the seed expires the moment the seed leaves the horizon,
    // counted on the server's clock (the injected one), not Redis's.
    const ttlMs = seed + rules.ttlBig + 1n - BigInt(Math.floor(now));
    const horizon = this.#range.horizon(now);
    const counts = this.#seedCounts.get(field);
    let others = 0;
    if (counts !== undefined) {
      counts.held.forEach((held, index) => {
        if (index !== call.group) others += held;
      });
    }
    const epochChanges = this.#epoch.changes;
    const reply = (await this.#run(operation, (redis) =>
      runScript(
        redis,
        script,
        [
          group.epoch,
          group.floor,
          group.sequence,
          group.counts,
          group.rows,
          keys.namespaceSeeds(group, ns.encoded),
          group.namespaces,
        ],
        [
          padSeed(seed),
          String(Number(seed)),
          String(ttlMs),
          String(rules.decayPerMs),
          group.channel,
          messageHeader(this.replicaId, call.group),
          field,
          String(rules.maxBucketsPerSeed),
          String(others),
          String(rules.maxSeedsPerNamespace),
          String(Number(horizon)),
          String(rules.maxNamespaces),
          ns.encoded,
          this.#epoch.text,
          force ? "force" : "",
          String(call.members.length),
          ...call.members,
          ...call.rows.map(String),
          call.packed,
          group.base,
        ],
      ),
    )) as [Buffer, Buffer | number, Buffer | number, Buffer?];
    const kind = String(reply[0]);
    if (kind === "epoch") return new EpochMoved(String(reply[1]) || null, epochChanges);
    if (kind === "too_old") return { kind: "too_old" };
    if (kind === "limit") {
      const which = String(reply[1]);
      const [limit, max]: [StoreLimit, number] =
        which === "seeds"
          ? ["max_seeds_per_namespace", rules.maxSeedsPerNamespace]
          : which === "namespaces"
            ? ["max_namespaces", rules.maxNamespaces]
            : ["max_buckets_per_seed", rules.maxBucketsPerSeed];
      this.#counters.refuse(limit);
      throw limitExceededError(limit, ns.name, seed, Number(String(reply[2])), max);
    }
    const held = Number(reply[2]);
    this.#noteCount(field, seed, call.group, held);
    const text = reply[3];
    if (kind !== "ok" || !Number.isFinite(held)) {
      throw new StoreError(
        "unavailable",
        "redis",
        `the ${script.name} script answered in an unknown format`,
      );
    }
    if (text === undefined || text.length === 0) return { kind: "ok", message: null, held };
    const message = parseMessage(text);
    if (message === undefined) {
      throw new StoreError(
        "unavailable",
        "redis",
        `the ${script.name} script answered in an unknown format`,
      );
    }
    return { kind: "ok", message: { ...message, namespace: ns.name }, held };
  }

  /** Remembers a group's count for a seed, for the other groups' calls. */
  #noteCount(field: string, seed: bigint, group: number, held: number): void {
    let counts = this.#seedCounts.get(field);
    if (counts === undefined) {
      if (held === 0) return;
      counts = { seed, held: new Array<number>(this.#keys.groups.length).fill(0) };
      this.#seedCounts.set(field, counts);
    }
    counts.held[group] = held;
  }

  /** Runs one operation on the command connection: timed, counted, failures as `unavailable`. */
  async #run<T>(operation: RedisOperation, fn: (redis: RedisClient) => Promise<T>): Promise<T> {
    const redis = this.#connections?.command;
    const started = performance.now();
    let ok = false;
    try {
      if (redis === undefined || this.#stopped) {
        throw new Error(this.#stopped ? "the store is stopped" : "the store is not started");
      }
      const result = await fn(redis);
      ok = true;
      return result;
    } catch (error) {
      if (error instanceof StoreError) throw error;
      this.#errors[operation]++;
      throw unavailable(operation, error instanceof Error ? error.message : String(error), error);
    } finally {
      const durationMs = performance.now() - started;
      for (const listener of this.#operationListeners) listener(operation, durationMs, ok);
    }
  }

  /**
   * Reads one group back for the relay (a gap, a resync), and the epoch
   * key after it: a group that went back in time may mean Redis lost its
   * data.
   */
  async #reread(group: number): Promise<void> {
    try {
      const epochChanges = this.#epoch.changes;
      const horizon = String(Number(this.#range.horizon(readStoreClock(this.#options.rules))));
      const [read, stored] = await this.#run("reread", (redis) =>
        Promise.all([
          rereadGroup(redis, this.#keys.groups[group] as SlotGroup, horizon),
          redis.get(this.#keys.epoch),
        ]),
      );
      if (stored !== this.#epoch.text) {
        // The relay starts over and resyncs: the group is read again then.
        await this.#epoch.learn(stored, epochChanges);
        return;
      }
      this.#relay.rereadDone(group, read.sequence, read.parts);
    } catch {
      this.#relay.rereadFailed(group);
    }
  }

  /**
   * Every group read back, after (re)subscribing: messages may have been
   * lost meanwhile. The epoch key is read first, so an epoch that changed
   * while this replica was away (or just before it subscribed) is followed
   * here.
   */
  async #resync(): Promise<void> {
    this.#resyncs++;
    try {
      const epochChanges = this.#epoch.changes;
      const stored = await this.#run("reread", (redis) => redis.get(this.#keys.epoch));
      if (stored !== this.#epoch.text) {
        await this.#epoch.learn(stored, epochChanges, { resync: false });
      }
      this.#relay.resync(this.#keys.groups.length);
    } catch {
      // Counted by #run; the next reconnect resyncs again.
    }
  }

  async #evictExpired(): Promise<void> {
    const horizon =
      BigInt(Math.floor(readStoreClock(this.#options.rules))) - this.#options.rules.ttlBig;
    try {
      await this.evictBefore(horizon);
    } catch {
      // Counted by #run; the keys expire on their own, and the next sweep tries again.
    }
  }

  readonly #onMessage = (channel: Buffer, data: Buffer): void => {
    const name = channel.toString();
    if (name === this.#keys.epochChannel) {
      const text = data.toString();
      if (!text.startsWith(epochNoticePrefix)) return;
      // A replica created an epoch: read the key (the notice may be older than it).
      const announced = parseEpoch(text.slice(epochNoticePrefix.length));
      if (announced === undefined || announced.id !== this.#epoch.current?.id) {
        void this.#epoch.check();
      }
      return;
    }
    if (this.#keys.groupOfChannel(name) === undefined) return;
    this.#relay.received(parseMessage(data));
  };

  readonly #onSubscriberReady = (): void => {
    void this.#subscribe(++this.#subscribeAttempt);
  };

  readonly #onSubscriberClose = (): void => {
    this.#subscribeAttempt++;
    this.#subscribed = false;
    this.#updateReady();
  };

  readonly #onShardSubscriber = (): void => {
    if (this.#subscribed) void this.#resync();
  };

  /**
   * After the subscriber (re)connects: notice a restarted Redis (one
   * server), read (or create) the epoch, subscribe to every group's
   * channel and the epoch channel, then resync.
   */
  async #subscribe(attempt: number): Promise<void> {
    const subscriber = this.#connections?.subscriber;
    if (subscriber === undefined) return;
    const started = performance.now();
    let ok = false;
    const cluster = this.#options.mode === "cluster";
    try {
      if (!cluster) {
        const info = await (subscriber as Redis).info("server");
        const runId = /run_id:(\w+)/.exec(info)?.[1];
        if (this.#runId !== undefined && runId !== this.#runId) {
          // Another server answers: Redis restarted, or Sentinel failed over.
          this.#redisRestarts++;
          this.#relay.reset();
        }
        this.#runId = runId;
      }
      // The epoch key is there unless Redis lost the data (a restart
      // without it, a FLUSHALL): then a new epoch begins. Read before
      // serving; the resync reads it again once subscribed, for a new
      // epoch announced in between. A Cluster's subscriber routes only
      // SSUBSCRIBE, so the command connection reads there.
      const via = cluster ? this.#connections?.command : subscriber;
      if (via === undefined) return;
      const epochChanges = this.#epoch.changes;
      const stored = await via.get(this.#keys.epoch);
      await this.#epoch.learn(stored, epochChanges, { via, resync: false });
      const channels = [
        this.#keys.epochChannel,
        ...this.#keys.groups.map((group) => group.channel),
      ];
      // A Cluster takes one slot per SSUBSCRIBE; one server takes them all at once.
      if (cluster) await Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)));
      else await subscriber.ssubscribe(...channels);
      ok = true;
      if (attempt !== this.#subscribeAttempt || this.#stopped) return;
      this.#subscribed = true;
      this.#updateReady();
      await this.#resync();
    } catch {
      if (!ok) this.#errors.subscribe++;
      // Reconnect and try again from the top.
      if (attempt === this.#subscribeAttempt && !this.#stopped) {
        if (cluster) {
          // A Cluster client reconnects its nodes itself: subscribe again later.
          this.#resubscribe = this.#options.rules.timers.setTimeout(() => {
            this.#resubscribe = undefined;
            if (attempt === this.#subscribeAttempt && !this.#stopped) this.#onSubscriberReady();
          }, this.#options.maxReconnectDelayMs);
        } else {
          (subscriber as Redis).disconnect(true);
        }
      }
    } finally {
      const durationMs = performance.now() - started;
      for (const listener of this.#operationListeners) listener("subscribe", durationMs, ok);
    }
  }

  readonly #onConnectionError = (error: Error): void => {
    this.#lastError = error.message;
    this.#updateReady();
  };

  readonly #updateReady = (): void => {
    const connections = this.#connections;
    const command = connections?.command;
    if (this.#stopped) {
      this.#notReadyReason = "stopped";
    } else if (command === undefined) {
      this.#notReadyReason = "not started";
    } else if (command.status !== "ready") {
      const at = connections?.describe ?? "Redis";
      this.#notReadyReason =
        this.#lastError === undefined
          ? `connecting to ${at}`
          : `cannot reach ${at}: ${this.#lastError}`;
    } else if (this.#epoch.current === undefined) {
      this.#notReadyReason = this.#epoch.problem ?? "reading the state epoch";
    } else if (!this.#subscribed) {
      this.#notReadyReason = "subscribing to the change channels";
    }
    this.#setReady(
      !this.#stopped &&
        this.#subscribed &&
        this.#epoch.current !== undefined &&
        command?.status === "ready",
    );
  };

  #setReady(ready: boolean): void {
    if (ready) this.#lastError = undefined;
    if (ready === this.#ready) return;
    this.#ready = ready;
    if (!ready && !this.#stopped) this.#disconnects++;
    for (const listener of [...this.#readyListeners]) listener(ready);
  }
}

/** One namespace of a {@link RedisStore}: three fields, taken once per stream. */
class NamespaceView implements RedisNamespace {
  readonly #store: NamespaceOps;
  readonly name: string;
  readonly encoded: string;

  constructor(store: NamespaceOps, name: string, encoded: string) {
    this.#store = store;
    this.name = name;
    this.encoded = encoded;
  }

  async applyUpdate(update: DeltaUpdateInput): Promise<UpdateResult> {
    return this.#store.apply(this, update);
  }

  async applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult> {
    return this.#store.applyOne(this, seed, rowId, colId, deltaProb, timestampMs);
  }

  async getSeed(seed: bigint): Promise<BucketState[]> {
    return this.#store.read(this, seed);
  }

  async readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): Promise<SeedPage> {
    return this.#store.page(this, seed, cursor, limit);
  }

  async applyOffer(offer: StateOfferInput): Promise<OfferResult> {
    return this.#store.offer(this, offer);
  }
}

/** Redis calls one page makes, at most: a page of row parts holding only tombstones ends early. */
const pageCalls = 64;

function unavailable(operation: string, problem: string, cause?: unknown): StoreError {
  return new StoreError("unavailable", "redis", `${operation}: ${problem}`, cause);
}

function noop(): void {}
