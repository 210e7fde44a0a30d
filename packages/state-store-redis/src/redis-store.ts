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
import { Redis } from "ioredis";
import type { Registry } from "prom-client";
import { entryArgs, singleEntry } from "./entry-args.js";
import { EpochKeeper, EpochMoved, epochNoticePrefix, parseEpoch } from "./epoch.js";
import { encodeNamespace, KeyLayout, padSeed } from "./keys.js";
import { type ChangeMessage, messageHeader, parseMessage, parseRowHash } from "./message.js";
import { registerRedisMetrics } from "./metrics.js";
import {
  type RedisStoreOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
} from "./options.js";
import { Relay, type RelayCounters, type RowRef } from "./relay.js";
import { applyScript, epochScript, evictScript, type LuaScript, offerScript } from "./scripts.js";
import { encodeSeedCursor, parseSeedCursor, type SeedScan, scanStart } from "./seed-cursor.js";

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
  /** Times Redis came back with another run id, its data lost: the relay started over. */
  readonly redisRestarts: number;
  /** Resyncs after (re)subscribing: every live row read back. */
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
   * describes, read with `HSCAN`: the seed's rows from its meta hash, then
   * each row's buckets, at most `limit` per page and never a whole row at
   * once. The cursor is a string. Because `HSCAN` may return a field twice
   * (when Redis resizes the hash during the read), a bucket may be listed on
   * two pages, each time with the value it had then; and a page before the
   * last may hold fewer than `limit` buckets, even none.
   */
  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): Promise<SeedPage>;
  /**
   * Merges an offer, as {@link StoreNamespace.applyOffer} describes, in one
   * Lua script (atomic, like an update). Refused with `unavailable` while
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

interface Connections {
  readonly command: Redis;
  readonly subscriber: Redis;
}

/**
 * The {@link Store} on Redis (or Valkey) 7+, shared by several stateless
 * server replicas: one hash per (namespace, seed, row), one Lua script per
 * `DeltaUpdate` applied atomically with the in-memory store's exact
 * arithmetic, `PEXPIRE` as eviction, and a change message published from the
 * script that every replica relays to its own streams (see {@link
 * RedisStore.onChange}).
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
  #connections: Connections | undefined;
  #stopped = false;
  #ready = false;
  #notReadyReason = "not started";
  /** The last connection error, for the reason readiness gives. */
  #lastError: string | undefined;
  #subscribed = false;
  #sharded = false;
  #runId: string | undefined;
  #subscribeAttempt = 0;
  #sweep: unknown;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => void this.stop();
  readonly #counters = new StoreCounters();
  #disconnects = 0;
  #redisRestarts = 0;
  #resyncs = 0;
  /** Follows the epoch key; a script may run through the subscriber before it subscribes. */
  readonly #epoch: EpochKeeper<{ readonly redis: Redis; readonly sharded: boolean }>;
  readonly #errors = Object.fromEntries(operations.map((op) => [op, 0])) as Record<
    RedisOperation,
    number
  >;

  /** Throws a `StoreError` (`invalid_option`) naming the first unusable option. */
  constructor(options: Partial<RedisStoreOptions> = {}) {
    this.#options = resolveRedisOptions(options);
    this.#keys = new KeyLayout(this.#options.keyPrefix);
    this.#range = new SeedRange(this.#options.rules);
    this.#relay = new Relay({
      replicaId: this.#options.replicaId,
      deliver: (namespace, seed, buckets) => {
        for (const listener of this.#changeListeners) listener(namespace, seed, buckets);
      },
      reread: (rows) => void this.#reread(rows),
    });
    this.#epoch = new EpochKeeper({
      key: this.#keys.epoch,
      read: () => this.#run("epoch", (redis) => redis.get(this.#keys.epoch)),
      create: async (value, via) => {
        const sharded = via?.sharded ?? this.#sharded;
        const create = (redis: Redis) =>
          this.#script(
            redis,
            epochScript,
            [this.#keys.epoch],
            [value, this.#keys.channel, sharded ? "S" : "P"],
          );
        return String(via ? await create(via.redis) : await this.#run("epoch", create));
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
    const { url, commandTimeoutMs, connectTimeoutMs, maxReconnectDelayMs } = this.#options;
    const common = {
      lazyConnect: true,
      // Fail at once while disconnected, rather than queue: a stream's update
      // must fail fast (UNAVAILABLE) so its client retries, and nothing waits
      // behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      connectTimeout: connectTimeoutMs,
      retryStrategy: (times: number) =>
        Math.min(50 * 2 ** Math.min(times, 16), maxReconnectDelayMs),
    };
    const command = new Redis(url, {
      ...common,
      connectionName: `fair-state:${this.replicaId}`,
      enableAutoPipelining: true,
    });
    const subscriber = new Redis(url, {
      ...common,
      connectionName: `fair-state:${this.replicaId}:sub`,
      // Resubscribed by hand, so the resync can follow the subscription.
      autoResubscribe: false,
    });
    this.#connections = { command, subscriber };
    command.on("ready", this.#updateReady);
    command.on("close", this.#updateReady);
    // An "error" event without a listener would crash the process; the
    // failures it reports surface as failed operations and readiness.
    command.on("error", this.#onConnectionError);
    subscriber.on("error", this.#onConnectionError);
    subscriber.on("ready", this.#onSubscriberReady);
    subscriber.on("close", this.#onSubscriberClose);
    subscriber.on("message", this.#onMessage);
    subscriber.on("smessage", this.#onMessage);
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
   * Disconnects both connections and stops the sweep; idempotent. A stopped
   * store stays stopped. Operations fail with `unavailable` from here on,
   * and epoch listeners are let go.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#epoch.clear();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
    if (this.#sweep !== undefined) this.#options.rules.timers.clearInterval(this.#sweep);
    this.#sweep = undefined;
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
   * the floor it raises in Redis makes each replica's script drop late
   * deltas for those seeds (`too_old`). Keys also expire on their own when
   * their seed leaves the horizon; this sweeps the index and counts.
   */
  async evictBefore(seed: bigint): Promise<EvictResult> {
    if (typeof seed !== "bigint") {
      throw new StoreError("invalid_argument", "seed", `must be a bigint, got ${typeof seed}`);
    }
    this.#range.evictBefore(seed);
    const reply = (await this.#run("evict", (redis) =>
      this.#script(
        redis,
        evictScript,
        [this.#keys.index, this.#keys.floor, this.#keys.namespaces],
        [this.#keys.prefix, padSeed(seed), String(Number(seed))],
      ),
    )) as [number, number];
    const [seeds, buckets] = reply;
    this.#counters.evicted(seeds, buckets);
    this.#relay.forget(seed);
    return { seeds, buckets };
  }

  /**
   * Sizes from Redis and this replica's counters. Seeds, buckets and
   * namespaces are read from the seed index and each seed's count (kept
   * exact by the apply script), so they cover every replica; a seed whose
   * keys Redis expired a moment ago may still be counted until the next
   * sweep. The counters (applied, dropped, clamped, evicted) are this
   * replica's: sum them over replicas.
   */
  async stats(): Promise<StoreStats> {
    const horizon = this.#range.horizon(readStoreClock(this.#options.rules));
    const { seeds, buckets, namespaces } = await this.#run("stats", async (redis) => {
      const members = await redis.zrangebyscore(this.#keys.index, Number(horizon) - 1, "+inf");
      const live = members
        .map((member) => {
          const space = member.indexOf(" ");
          return { seed: BigInt(member.slice(0, space)), ns: member.slice(space + 1) };
        })
        .filter((entry) => entry.seed >= horizon);
      const pipeline = redis.pipeline();
      for (const { seed, ns } of live)
        pipeline.hget(this.#keys.meta(this.#keys.seedTag(ns, seed)), "n");
      const counts = live.length > 0 ? ((await pipeline.exec()) ?? []) : [];
      const held = new Set<string>();
      let seedCount = 0;
      let bucketCount = 0;
      counts.forEach(([error, value], i) => {
        if (error) throw error;
        const n = Number(value ?? 0);
        if (n > 0) {
          seedCount++;
          bucketCount += n;
          held.add(live[i]?.ns ?? "");
        }
      });
      return { seeds: seedCount, buckets: bucketCount, namespaces: held.size };
    });
    return {
      namespaces,
      seeds,
      buckets,
      ...this.#counters.counts(),
    };
  }

  /** Applies a whole update in one script call. */
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
    // Everything the script needs is taken from the reused batch before the
    // first await, so concurrent applies cannot see each other's batch.
    const latest = this.#range.latestTimestamp(now);
    const { rowSlots, packed, clamped } = entryArgs(
      batch,
      count,
      this.#options.rules.maxCols,
      latest,
    );
    const message = await this.#runInEpoch(applyScript, ns, seed, now, rowSlots, packed);
    if (message === undefined) {
      this.#counters.drop("too_old", count);
      return { status: "too_old", buckets: [], clampedTimestamps: 0 };
    }
    this.#counters.applied += count;
    this.#counters.clamped += clamped;
    if (message === null) return { status, buckets: [], clampedTimestamps: clamped };
    this.#relay.own(message);
    return {
      status,
      buckets: message.rows.flatMap((row) => row.buckets),
      clampedTimestamps: clamped,
    };
  }

  /** Applies one delta. */
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
    const packed = singleEntry(colId, deltaProb, ts);
    const rowSlots = new Map([[rowId, 1]]);
    const message = await this.#runInEpoch(applyScript, ns, seed, now, rowSlots, packed);
    if (message === undefined) {
      this.#counters.drop("too_old", 1);
      return { status: "too_old", bucket: undefined, timestampClamped: false };
    }
    this.#counters.applied++;
    if (timestampClamped) this.#counters.clamped++;
    if (message !== null) this.#relay.own(message);
    // A delta that leaves a default bucket at 0 is applied all the same:
    // {0, ts} is what the formula gives, and nothing is stored.
    const bucket = message?.rows[0]?.buckets[0] ?? { rowId, colId, prob: 0, lastUpdateTimeMs: ts };
    return { status, bucket, timestampClamped };
  }

  /**
   * Merges an offer in one script call (learning mode): validated whole,
   * then refused while the epoch is unknown (`unavailable`) or older than
   * `learningPeriodMs` (`learning_over`), dropped for a seed outside the
   * live range, else merged by the offer script — which checks that the
   * epoch the decision was made in is still the one in Redis.
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
    const { rowSlots, packed } = entryArgs(batch, count, this.#options.rules.maxCols, latest);
    for (let attempt = 1; ; attempt++) {
      const reply = await this.#runBatch("offer", offerScript, ns, seed, now, rowSlots, packed);
      if (reply instanceof EpochMoved) {
        await this.#followEpoch("offer", reply, attempt);
        // A new epoch: decide again whether it still learns.
        const again = this.#refuseOffer(seed, now);
        if (again !== undefined) return again;
        continue;
      }
      if (reply === undefined) {
        this.#counters.offer("too_old");
        return { status: "too_old", buckets: [] };
      }
      this.#counters.offer("applied");
      if (reply === null) return { status: "applied", buckets: [] };
      this.#relay.own(reply);
      return { status: "applied", buckets: reply.rows.flatMap((row) => row.buckets) };
    }
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

  /** Every non-default bucket of one (namespace, seed): the row index, then every row, pipelined. */
  async #read(ns: NamespaceView, seed: bigint): Promise<BucketState[]> {
    checkSeed(seed, "seed", this.#options.rules);
    const tag = this.#keys.seedTag(ns.encoded, seed);
    return this.#run("get_seed", async (redis) => {
      const meta = await redis.hgetall(this.#keys.meta(tag));
      const rows = Object.keys(meta)
        .filter((field) => field.startsWith("r"))
        .map((field) => Number(field.slice(1)));
      if (rows.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const row of rows) pipeline.hgetall(this.#keys.row(tag, row));
      const replies = (await pipeline.exec()) ?? [];
      const out: BucketState[] = [];
      replies.forEach(([error, fields], i) => {
        if (error) throw error;
        const { buckets } = parseRowHash(rows[i] as number, fields as Record<string, string>);
        for (const bucket of buckets) if (bucket.prob > 0) out.push(bucket);
      });
      return out;
    });
  }

  /**
   * One page of one (namespace, seed): HSCAN of the meta hash for its rows,
   * then of each row, at most `pageCount` fields per call and `pageCalls`
   * calls per page (seed-cursor.ts has the cursor).
   */
  async #readPage(
    ns: NamespaceView,
    seed: bigint,
    cursor: SeedCursor | undefined,
    limit: number,
  ): Promise<SeedPage> {
    checkSeed(seed, "seed", this.#options.rules);
    const start: SeedScan = cursor === undefined ? scanStart : parseSeedCursor(cursor);
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
      throw new StoreError("invalid_argument", "limit", `must be an integer ≥ 1, got ${limit}`);
    }
    const tag = this.#keys.seedTag(ns.encoded, seed);
    return this.#run("read_seed", async (redis) => {
      let { outer, inner } = start;
      const rows = [...start.rows];
      let carry = [...start.carry];
      const buckets: BucketState[] = [];
      for (let calls = 0; buckets.length < limit && calls < pageCalls; calls++) {
        const row = rows[0];
        if (row === undefined) {
          if (outer === undefined) break;
          const [next, fields] = await redis.hscan(this.#keys.meta(tag), outer, "COUNT", 256);
          outer = next === "0" ? undefined : next;
          for (let i = 0; i < fields.length; i += 2) {
            const field = fields[i] as string;
            if (/^r\d+$/.test(field)) rows.push(Number(field.slice(1)));
          }
        } else if (carry.length > 0) {
          const cols = carry.slice(0, limit - buckets.length);
          carry = carry.slice(cols.length);
          const values = await redis.hmget(this.#keys.row(tag, row), ...cols.map(String));
          cols.forEach((colId, i) => {
            const bucket = parseBucket(row, colId, values[i]);
            if (bucket !== undefined) buckets.push(bucket);
          });
        } else if (inner === undefined) {
          rows.shift();
          inner = "0";
        } else {
          const count = Math.min(pageCount, limit - buckets.length);
          const [next, fields] = await redis.hscan(this.#keys.row(tag, row), inner, "COUNT", count);
          inner = next === "0" ? undefined : next;
          for (let i = 0; i < fields.length; i += 2) {
            const field = fields[i] as string;
            if (field === "v") continue;
            const bucket = parseBucket(row, Number(field), fields[i + 1]);
            if (bucket === undefined) continue;
            if (buckets.length < limit) buckets.push(bucket);
            else carry.push(bucket.colId);
          }
        }
      }
      while (rows.length > 0 && inner === undefined && carry.length === 0) {
        rows.shift();
        inner = "0";
      }
      const done = rows.length === 0 && outer === undefined;
      return { buckets, next: done ? undefined : encodeSeedCursor({ outer, rows, inner, carry }) };
    });
  }

  /**
   * Runs an update's script in the current epoch, following the epoch when
   * the script finds it moved (and applying the update in the new one).
   */
  async #runInEpoch(
    script: LuaScript,
    ns: NamespaceView,
    seed: bigint,
    now: number,
    rowSlots: Map<number, number>,
    packed: Buffer,
  ): Promise<ChangeMessage | null | undefined> {
    for (let attempt = 1; ; attempt++) {
      const reply = await this.#runBatch("apply", script, ns, seed, now, rowSlots, packed);
      if (!(reply instanceof EpochMoved)) return reply;
      await this.#followEpoch("apply", reply, attempt);
    }
  }

  /**
   * Runs the apply or offer script once. Resolves with the change message,
   * `null` when nothing changed, `undefined` when the seed was below the
   * floor, an {@link EpochMoved} when the epoch key no longer held the
   * epoch this replica knows (nothing was written); rejects with
   * `limit_exceeded` when the script refused the batch for a limit.
   */
  async #runBatch(
    operation: RedisOperation,
    script: LuaScript,
    ns: NamespaceView,
    seed: bigint,
    now: number,
    rowSlots: Map<number, number>,
    packed: Buffer,
  ): Promise<ChangeMessage | null | undefined | EpochMoved> {
    const keys = this.#keys;
    const tag = keys.seedTag(ns.encoded, seed);
    const { rules } = this.#options;
    // Every key of the seed expires the moment the seed leaves the horizon,
    // counted on the server's clock (the injected one), not Redis's.
    const ttlMs = seed + rules.ttlBig + 1n - BigInt(Math.floor(now));
    const horizon = this.#range.horizon(now);
    const rowKeys: string[] = [];
    const rowIds: string[] = [];
    for (const [row] of rowSlots) {
      rowKeys.push(keys.row(tag, row));
      rowIds.push(String(row));
    }
    const expected = this.#epoch.text;
    const epochChanges = this.#epoch.changes;
    const reply = (await this.#run(operation, (redis) =>
      this.#script(
        redis,
        script,
        [
          keys.meta(tag),
          keys.index,
          keys.floor,
          keys.namespaceSeeds(ns.encoded),
          keys.namespaces,
          keys.epoch,
          ...rowKeys,
        ],
        [
          padSeed(seed),
          keys.indexMember(ns.encoded, seed),
          String(Number(seed)),
          String(ttlMs),
          String(rules.decayPerMs),
          keys.channel,
          this.#sharded ? "S" : "P",
          messageHeader(this.replicaId, ns.encoded, seed),
          String(rules.maxBucketsPerSeed),
          String(rules.maxSeedsPerNamespace),
          String(Number(horizon)),
          String(rules.maxNamespaces),
          ns.encoded,
          expected,
          String(rowIds.length),
          ...rowIds,
          packed,
        ],
      ),
    )) as [string, string?, string?];
    if (reply[0] === "epoch") return new EpochMoved(reply[1] || null, epochChanges);
    if (reply[0] === "too_old") return undefined;
    if (reply[0] === "limit") {
      const [limit, max]: [StoreLimit, number] =
        reply[1] === "seeds"
          ? ["max_seeds_per_namespace", rules.maxSeedsPerNamespace]
          : reply[1] === "namespaces"
            ? ["max_namespaces", rules.maxNamespaces]
            : ["max_buckets_per_seed", rules.maxBucketsPerSeed];
      this.#counters.refuse(limit);
      throw limitExceededError(limit, ns.name, seed, Number(reply[2]), max);
    }
    if (!reply[1]) return null;
    const message = parseMessage(reply[1]);
    if (message === undefined) {
      throw new StoreError(
        "unavailable",
        "redis",
        `the ${script.name} script answered in an unknown format`,
      );
    }
    return { ...message, namespace: ns.name };
  }

  /**
   * After a script found the epoch moved: learns the new one (creating it
   * when the key is missing), so the caller can try again — at most three
   * times in all, then `unavailable`.
   */
  async #followEpoch(operation: RedisOperation, moved: EpochMoved, attempt: number) {
    let problem = "the state epoch kept changing";
    if (attempt < 3) {
      try {
        return await this.#epoch.learn(moved.stored, moved.changes);
      } catch (error) {
        if (error instanceof StoreError) throw error;
        problem = error instanceof Error ? error.message : String(error);
      }
    }
    this.#errors[operation]++;
    throw unavailable(operation, problem);
  }

  /** EVALSHA, and EVAL when Redis does not have the script (a restart, SCRIPT FLUSH). */
  async #script(
    redis: Redis,
    script: LuaScript,
    keys: string[],
    args: (string | Buffer)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.eval(script.source, keys.length, ...keys, ...args);
    }
  }

  /** Runs one operation on the command connection: timed, counted, failures as `unavailable`. */
  async #run<T>(operation: RedisOperation, fn: (redis: Redis) => Promise<T>): Promise<T> {
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
   * Reads rows back for the relay (gaps, resyncs), pipelined, and the epoch
   * key with them: a row that went back in time may mean Redis lost its data.
   */
  async #reread(rows: readonly RowRef[]): Promise<void> {
    try {
      const epochChanges = this.#epoch.changes;
      const replies = await this.#run("reread", async (redis) => {
        const pipeline = redis.pipeline();
        for (const { namespace, seed, row } of rows) {
          pipeline.hgetall(
            this.#keys.row(this.#keys.seedTag(encodeNamespace(namespace), seed), row),
          );
        }
        pipeline.get(this.#keys.epoch);
        return (await pipeline.exec()) ?? [];
      });
      const [epochError, stored] = replies.pop() ?? [new Error("no reply")];
      if (!epochError && stored !== this.#epoch.text) {
        // The relay starts over and resyncs: these rows are read again then.
        await this.#epoch.learn(stored as string | null, epochChanges);
      }
      replies.forEach(([error, fields], i) => {
        const ref = rows[i] as RowRef;
        if (error) {
          this.#relay.rereadFailed(ref);
          return;
        }
        const { version, buckets } = parseRowHash(ref.row, fields as Record<string, string>);
        this.#relay.rereadDone(ref, version, buckets);
      });
    } catch {
      for (const ref of rows) this.#relay.rereadFailed(ref);
    }
  }

  /**
   * Every live row, read back after (re)subscribing: messages may have been
   * lost meanwhile. The epoch key is read with the index, so an epoch that
   * changed while this replica was away (or just before it subscribed) is
   * followed here.
   */
  async #resync(): Promise<void> {
    this.#resyncs++;
    try {
      const horizon = this.#range.horizon(readStoreClock(this.#options.rules));
      const epochChanges = this.#epoch.changes;
      let stored: string | null = null;
      const rows = await this.#run("reread", async (redis) => {
        const [epoch, members] = await Promise.all([
          redis.get(this.#keys.epoch),
          redis.zrangebyscore(this.#keys.index, Number(horizon) - 1, "+inf"),
        ]);
        stored = epoch;
        const seeds = members.map((member) => {
          const space = member.indexOf(" ");
          const encoded = member.slice(space + 1);
          return { seed: BigInt(member.slice(0, space)), encoded };
        });
        const pipeline = redis.pipeline();
        for (const { seed, encoded } of seeds) {
          pipeline.hkeys(this.#keys.meta(this.#keys.seedTag(encoded, seed)));
        }
        const replies = seeds.length > 0 ? ((await pipeline.exec()) ?? []) : [];
        const refs: RowRef[] = [];
        replies.forEach(([error, fields], i) => {
          if (error) throw error;
          const { seed, encoded } = seeds[i] as { seed: bigint; encoded: string };
          const namespace = decodeURIComponent(encoded);
          for (const field of fields as string[]) {
            if (field.startsWith("r")) refs.push({ namespace, seed, row: Number(field.slice(1)) });
          }
        });
        return refs;
      });
      if (stored !== this.#epoch.text) {
        await this.#epoch.learn(stored, epochChanges, { resync: false });
      }
      this.#relay.resync(rows);
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

  readonly #onMessage = (_channel: string, text: string): void => {
    if (text.startsWith(epochNoticePrefix)) {
      // A replica created an epoch: read the key (the notice may be older than it).
      const announced = parseEpoch(text.slice(epochNoticePrefix.length));
      if (announced === undefined || announced.id !== this.#epoch.current?.id) {
        void this.#epoch.check();
      }
      return;
    }
    this.#relay.received(parseMessage(text));
  };

  readonly #onSubscriberReady = (): void => {
    void this.#subscribe(++this.#subscribeAttempt);
  };

  readonly #onSubscriberClose = (): void => {
    this.#subscribeAttempt++;
    this.#subscribed = false;
    this.#updateReady();
  };

  /**
   * After the subscriber (re)connects: notice a restarted Redis, read (or
   * create) the epoch, subscribe, then resync.
   */
  async #subscribe(attempt: number): Promise<void> {
    const subscriber = this.#connections?.subscriber;
    if (subscriber === undefined) return;
    const started = performance.now();
    let ok = false;
    try {
      const info = await subscriber.info("server");
      const runId = /run_id:(\w+)/.exec(info)?.[1];
      if (this.#runId !== undefined && runId !== this.#runId) {
        // Redis came back without its data: versions start again from 1.
        this.#redisRestarts++;
        this.#relay.reset();
      }
      this.#runId = runId;
      // SPUBLISH (Redis 7+, Valkey) where the server has it: the same on
      // one server, and on a Cluster it stays on one shard.
      const spublish = (await subscriber.call("COMMAND", "INFO", "SPUBLISH")) as unknown[];
      const sharded = Array.isArray(spublish) && spublish[0] != null;
      // The epoch key is there unless Redis lost the data (a restart with
      // another run id, a FLUSHALL): then a new epoch begins. Read before
      // serving; the resync reads it again once subscribed, for a new epoch
      // announced in between.
      const epochChanges = this.#epoch.changes;
      const stored = await subscriber.get(this.#keys.epoch);
      await this.#epoch.learn(stored, epochChanges, {
        via: { redis: subscriber, sharded },
        resync: false,
      });
      if (sharded) await subscriber.ssubscribe(this.#keys.channel);
      else await subscriber.subscribe(this.#keys.channel);
      ok = true;
      if (attempt !== this.#subscribeAttempt || this.#stopped) return;
      this.#sharded = sharded;
      this.#subscribed = true;
      this.#updateReady();
      await this.#resync();
    } catch {
      if (!ok) this.#errors.subscribe++;
      // Reconnect and try again from the top.
      if (attempt === this.#subscribeAttempt && !this.#stopped) subscriber.disconnect(true);
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
    const command = this.#connections?.command;
    if (this.#stopped) {
      this.#notReadyReason = "stopped";
    } else if (command === undefined) {
      this.#notReadyReason = "not started";
    } else if (command.status !== "ready") {
      const at = `Redis at ${command.options.host}:${command.options.port}`;
      this.#notReadyReason =
        this.#lastError === undefined
          ? `connecting to ${at}`
          : `cannot reach ${at}: ${this.#lastError}`;
    } else if (this.#epoch.current === undefined) {
      this.#notReadyReason = this.#epoch.problem ?? "reading the state epoch";
    } else if (!this.#subscribed) {
      this.#notReadyReason = "subscribing to the change channel";
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

/** Fields a page asks one HSCAN of a row for, at most. */
const pageCount = 1024;
/** Redis calls one page makes, at most: a page of rows holding only tombstones ends early. */
const pageCalls = 64;

/** A row hash's field as a bucket; `undefined` for a tombstone (`"0 <ts>"`) or a missing field. */
function parseBucket(rowId: number, colId: number, value: string | null | undefined) {
  if (value == null) return undefined;
  const space = value.indexOf(" ");
  const prob = Number(value.slice(0, space));
  if (!(prob > 0)) return undefined;
  return { rowId, colId, prob, lastUpdateTimeMs: Number(value.slice(space + 1)) };
}

function unavailable(operation: string, problem: string, cause?: unknown): StoreError {
  return new StoreError("unavailable", "redis", `${operation}: ${problem}`, cause);
}

function noop(): void {}
