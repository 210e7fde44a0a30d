// A third Store, for tests only: in memory like InMemoryStore but written
// apart from it — a Map per seed, every answer a promise, and the contract's
// optional capabilities a remote store has (a change feed, readiness and, when
// asked for, epochs a test can change) — so the server is seen to run on the
// contract alone.

import { randomUUID } from "node:crypto";
import type {
  BucketState,
  ChangeListener,
  DeltaResult,
  DeltaUpdateInput,
  EvictResult,
  InMemoryStoreOptions,
  OfferResult,
  SeedCursor,
  SeedPage,
  StateOfferInput,
  Store,
  StoreChangeFeed,
  StoreEpoch,
  StoreEpochs,
  StoreNamespace,
  StoreReadiness,
  StoreStats,
  UpdateResult,
} from "@fair/state-store";
import { isLearning, StoreError } from "@fair/state-store";
import {
  checkSeed,
  DeltaBatch,
  readStoreClock,
  resolveStoreOptions,
  SeedRange,
  StoreCounters,
  validateDelta,
  validateOffer,
  validateUpdate,
} from "@fair/state-store/internal";

interface Held {
  prob: number;
  ts: number;
  /** Its place in {@link SeedMap.keys}, kept while it is held. */
  readonly slot: number;
}

/**
 * One seed's buckets: a Map by `row:col`, and each key's slot in a list a
 * paged read walks. A key keeps its slot while it is held (a freed slot is
 * reused by a later key), so a read by slot lists a bucket held throughout
 * exactly once, as `readSeed` asks.
 */
class SeedMap {
  readonly held = new Map<string, Held>();
  /** The key in each slot; `undefined` for a free one. */
  readonly keys: (string | undefined)[] = [];
  readonly #free: number[] = [];

  get size(): number {
    return this.held.size;
  }

  set(key: string, prob: number, ts: number): void {
    const held = this.held.get(key);
    if (held !== undefined) {
      held.prob = prob;
      held.ts = ts;
      return;
    }
    const slot = this.#free.pop() ?? this.keys.length;
    this.keys[slot] = key;
    this.held.set(key, { prob, ts, slot });
  }

  delete(key: string): void {
    const held = this.held.get(key);
    if (held === undefined) return;
    this.held.delete(key);
    this.keys[held.slot] = undefined;
    this.#free.push(held.slot);
  }
}

/** What a {@link MapStore} offers beyond the options every store takes. */
export interface MapStoreExtras {
  /**
   * Whether the store has the `epochs` capability, as a Redis store does:
   * announced in `fair-state-epoch`, changed by {@link MapStore.newEpoch}.
   * Default false: the store says nothing of epochs, though it keeps one
   * for its learning period, begun when it was made.
   */
  readonly epochs?: boolean;
}

export class MapStore implements Store, StoreChangeFeed, StoreReadiness {
  readonly description = { store: "map (test)" };
  /** Present only with {@link MapStoreExtras.epochs}. */
  declare readonly epochs?: StoreEpochs;
  readonly #rules;
  readonly #range;
  readonly #batch = new DeltaBatch();
  readonly #counters = new StoreCounters();
  /** namespace → seed → `row:col` → bucket */
  readonly #spaces = new Map<string, Map<bigint, SeedMap>>();
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #readyListeners = new Set<(ready: boolean) => void>();
  readonly #epochListeners = new Set<(epoch: StoreEpoch) => void>();
  /** The state's lifetime: learning mode runs for `learningPeriodMs` from its start. */
  #epoch: StoreEpoch;
  #ready = false;
  #sweep: unknown;

  constructor(options: Partial<InMemoryStoreOptions> = {}, extras: MapStoreExtras = {}) {
    this.#rules = resolveStoreOptions(options);
    this.#range = new SeedRange(this.#rules);
    this.#epoch = { id: randomUUID(), startedAtMs: readStoreClock(this.#rules) };
    if (extras.epochs) {
      const listeners = this.#epochListeners;
      const current = () => this.#epoch;
      this.epochs = {
        get current() {
          return current();
        },
        onEpochChange(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      };
    }
  }

  /** The current epoch, with the capability or not. */
  get epoch(): StoreEpoch {
    return this.#epoch;
  }

  /**
   * Starts a new epoch now (`id` by default a fresh UUID), as a Redis that
   * lost its data does: every bucket is forgotten, learning mode begins
   * again, and the epoch's listeners are told. The current epoch's own id
   * changes nothing and is only told again, as a remote store re-reading
   * its epoch after reconnecting may. Returns the epoch now current.
   */
  newEpoch(id: string = randomUUID()): StoreEpoch {
    if (id !== this.#epoch.id) {
      this.#spaces.clear();
      this.#epoch = { id, startedAtMs: readStoreClock(this.#rules) };
    }
    const epoch = this.#epoch;
    for (const listener of this.#epochListeners) listener(epoch);
    return epoch;
  }

  get changes(): StoreChangeFeed {
    return this;
  }

  get readiness(): StoreReadiness {
    return this;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get notReadyReason(): string | undefined {
    return this.#ready ? undefined : "the map store is not started";
  }

  /** Makes the store (un)ready, as a remote store losing its connection would be. */
  setReady(ready: boolean): void {
    if (ready === this.#ready) return;
    this.#ready = ready;
    for (const listener of this.#readyListeners) listener(ready);
  }

  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.#readyListeners.add(listener);
    return () => this.#readyListeners.delete(listener);
  }

  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  start(): void {
    if (this.#sweep !== undefined) return;
    const { timers, evictionIntervalMs, ttlBig } = this.#rules;
    this.#sweep = timers.setInterval(() => {
      void this.evictBefore(BigInt(Math.floor(readStoreClock(this.#rules))) - ttlBig);
    }, evictionIntervalMs);
    this.setReady(true);
  }

  async stop(): Promise<void> {
    if (this.#sweep !== undefined) this.#rules.timers.clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.setReady(false);
  }

  namespace(name: string): StoreNamespace {
    return {
      applyUpdate: async (update) => this.#applyUpdate(name, update),
      applyDelta: async (seed, rowId, colId, deltaProb, timestampMs) =>
        this.#applyDelta(name, seed, rowId, colId, deltaProb, timestampMs),
      getSeed: async (seed) => this.#getSeed(name, seed),
      readSeed: async (seed, cursor, limit) => this.#readSeed(name, seed, cursor, limit),
      applyOffer: async (offer) => this.#applyOffer(name, offer),
    };
  }

  applyUpdate(update: DeltaUpdateInput): Promise<UpdateResult> {
    return this.namespace("").applyUpdate(update) as Promise<UpdateResult>;
  }

  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): Promise<DeltaResult> {
    return this.namespace("").applyDelta(
      seed,
      rowId,
      colId,
      deltaProb,
      timestampMs,
    ) as Promise<DeltaResult>;
  }

  getSeed(seed: bigint): Promise<BucketState[]> {
    return this.namespace("").getSeed(seed) as Promise<BucketState[]>;
  }

  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): Promise<SeedPage> {
    return this.namespace("").readSeed(seed, cursor, limit) as Promise<SeedPage>;
  }

  applyOffer(offer: StateOfferInput): Promise<OfferResult> {
    return this.namespace("").applyOffer(offer) as Promise<OfferResult>;
  }

  async evictBefore(seed: bigint): Promise<EvictResult> {
    this.#range.evictBefore(seed);
    let seeds = 0;
    let buckets = 0;
    for (const held of this.#spaces.values()) {
      for (const [heldSeed, table] of held) {
        if (heldSeed >= seed) continue;
        seeds++;
        buckets += table.size;
        held.delete(heldSeed);
      }
    }
    this.#counters.evicted(seeds, buckets);
    return { seeds, buckets };
  }

  async stats(): Promise<StoreStats> {
    let namespaces = 0;
    let seeds = 0;
    let buckets = 0;
    for (const held of this.#spaces.values()) {
      if (held.size > 0) namespaces++;
      seeds += held.size;
      for (const table of held.values()) buckets += table.size;
    }
    return { namespaces, seeds, buckets, ...this.#counters.counts() };
  }

  #applyUpdate(namespace: string, update: DeltaUpdateInput): UpdateResult {
    const batch = this.#batch;
    validateUpdate(update, this.#rules, batch);
    const now = readStoreClock(this.#rules);
    const status = this.#range.classify(update.seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, batch.length);
      return { status, buckets: [], clampedTimestamps: 0 };
    }
    const latest = this.#range.latestTimestamp(now);
    const changed = new Map<string, BucketState>();
    let clamped = 0;
    for (let i = 0; i < batch.length; i++) {
      const key = batch.keys[i] as number;
      const rowId = Math.floor(key / this.#rules.maxCols);
      const colId = key - rowId * this.#rules.maxCols;
      let ts = batch.times[i] as number;
      if (ts > latest) {
        ts = latest;
        clamped++;
      }
      const a = batch.deltas[i] as number;
      const { bucket, held } = this.#apply(namespace, update.seed, rowId, colId, a, ts);
      // A default bucket a delta leaves at 0 changes nothing.
      if (held || bucket.prob > 0) changed.set(`${rowId}:${colId}`, bucket);
    }
    this.#counters.applied += batch.length;
    this.#counters.clamped += clamped;
    const buckets = [...changed.values()];
    if (buckets.length > 0) this.#announce(namespace, update.seed, buckets);
    return { status, buckets, clampedTimestamps: clamped };
  }

  #applyDelta(
    namespace: string,
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): DeltaResult {
    validateDelta(seed, rowId, colId, deltaProb, timestampMs, this.#rules);
    const now = readStoreClock(this.#rules);
    const status = this.#range.classify(seed, now);
    if (status !== "applied") {
      this.#counters.drop(status, 1);
      return { status, bucket: undefined, timestampClamped: false };
    }
    const latest = this.#range.latestTimestamp(now);
    const timestampClamped = timestampMs > latest;
    const ts = Math.min(timestampMs, latest);
    const { bucket, held } = this.#apply(namespace, seed, rowId, colId, deltaProb, ts);
    this.#counters.applied++;
    if (timestampClamped) this.#counters.clamped++;
    if (held || bucket.prob > 0) this.#announce(namespace, seed, [bucket]);
    return { status, bucket, timestampClamped };
  }

  /**
   * Decays to the later of the two times, adds, clamps; a bucket at 0 is
   * forgotten. Says whether the bucket was held before.
   */
  #apply(namespace: string, seed: bigint, rowId: number, colId: number, a: number, ts: number) {
    const seeds = this.#spaces.get(namespace) ?? new Map<bigint, SeedMap>();
    this.#spaces.set(namespace, seeds);
    const table = seeds.get(seed) ?? new SeedMap();
    seeds.set(seed, table);
    const key = `${rowId}:${colId}`;
    const held = table.held.get(key);
    const { decayPerMs } = this.#rules;
    let prob: number;
    let time: number;
    if (held === undefined) {
      prob = clamp01(a);
      time = ts;
    } else if (ts >= held.ts) {
      const decayed =
        ts === held.ts || decayPerMs === 0
          ? held.prob
          : held.prob * Math.exp(-decayPerMs * (ts - held.ts));
      prob = clamp01(decayed + a);
      time = ts;
    } else {
      prob = clamp01(
        held.prob + (decayPerMs === 0 ? a : a * Math.exp(-decayPerMs * (held.ts - ts))),
      );
      time = held.ts;
    }
    if (prob === 0) table.delete(key);
    else table.set(key, prob, time);
    if (table.size === 0) seeds.delete(seed);
    return { bucket: { rowId, colId, prob, lastUpdateTimeMs: time }, held: held !== undefined };
  }

  /**
   * Learning mode: each offered bucket `(q, u)` against the held `(p, t)`,
   * both decayed to `T = max(t, u)`, the larger kept, stamped `T` — a
   * maximum, so the same offer twice changes nothing the second time. Only
   * while the epoch is at most `learningPeriodMs` old (as the other stores
   * count it); only raised buckets are listed and announced.
   */
  #applyOffer(namespace: string, offer: StateOfferInput): OfferResult {
    const batch = this.#batch;
    validateOffer(offer, this.#rules, batch);
    const now = readStoreClock(this.#rules);
    if (!isLearning(this.#epoch, now, this.#rules.learningPeriodMs)) {
      this.#counters.offer("learning_over");
      return { status: "learning_over", buckets: [] };
    }
    const status = this.#range.classify(offer.seed, now);
    if (status !== "applied") {
      this.#counters.offer(status);
      return { status, buckets: [] };
    }
    const latest = this.#range.latestTimestamp(now);
    const raised = new Map<string, BucketState>();
    for (let i = 0; i < batch.length; i++) {
      const key = batch.keys[i] as number;
      const rowId = Math.floor(key / this.#rules.maxCols);
      const colId = key - rowId * this.#rules.maxCols;
      const ts = Math.min(batch.times[i] as number, latest);
      const bucket = this.#merge(
        namespace,
        offer.seed,
        rowId,
        colId,
        batch.deltas[i] as number,
        ts,
      );
      if (bucket !== undefined) raised.set(`${rowId}:${colId}`, bucket);
    }
    this.#counters.offer("applied");
    const buckets = [...raised.values()];
    if (buckets.length > 0) this.#announce(namespace, offer.seed, buckets);
    return { status, buckets };
  }

  /** Keeps the larger of the held and the offered value at the later time; the bucket if it rose. */
  #merge(namespace: string, seed: bigint, rowId: number, colId: number, q: number, u: number) {
    const key = `${rowId}:${colId}`;
    const held = this.#spaces.get(namespace)?.get(seed)?.held.get(key);
    const { decayPerMs } = this.#rules;
    let prob = q;
    let time = u;
    if (held === undefined) {
      if (q <= 0) return undefined;
    } else {
      time = Math.max(held.ts, u);
      const decay = (value: number, from: number) =>
        from === time || decayPerMs === 0 ? value : value * Math.exp(-decayPerMs * (time - from));
      prob = decay(q, u);
      if (!(prob > decay(held.prob, held.ts))) return undefined;
    }
    const seeds = this.#spaces.get(namespace) ?? new Map<bigint, SeedMap>();
    this.#spaces.set(namespace, seeds);
    const table = seeds.get(seed) ?? new SeedMap();
    seeds.set(seed, table);
    table.set(key, prob, time);
    return { rowId, colId, prob, lastUpdateTimeMs: time };
  }

  #getSeed(namespace: string, seed: bigint): BucketState[] {
    checkSeed(seed, "seed", this.#rules);
    const table = this.#spaces.get(namespace)?.get(seed);
    return [...(table?.held ?? [])].map(([key, held]) => bucketOf(key, held));
  }

  /** The cursor is the slot to go on from; a page walks the slots in order. */
  #readSeed(
    namespace: string,
    seed: bigint,
    cursor: SeedCursor | undefined,
    limit: number,
  ): SeedPage {
    checkSeed(seed, "seed", this.#rules);
    const from = cursor ?? 0;
    if (typeof from !== "number" || !Number.isSafeInteger(from) || from < 0) {
      throw new StoreError("invalid_argument", "cursor", "must be a cursor this store returned");
    }
    if (!Number.isInteger(limit) || limit < 1) {
      throw new StoreError("invalid_argument", "limit", `must be an integer ≥ 1, got ${limit}`);
    }
    const table = this.#spaces.get(namespace)?.get(seed);
    const buckets: BucketState[] = [];
    if (table === undefined) return { buckets, next: undefined };
    const { keys, held } = table;
    let slot = from;
    for (; slot < keys.length && buckets.length < limit; slot++) {
      const key = keys[slot];
      const bucket = key === undefined ? undefined : held.get(key);
      if (key !== undefined && bucket !== undefined) buckets.push(bucketOf(key, bucket));
    }
    return { buckets, next: slot < keys.length ? slot : undefined };
  }

  #announce(namespace: string, seed: bigint, buckets: BucketState[]): void {
    for (const listener of this.#changeListeners) listener(namespace, seed, buckets);
  }
}

function bucketOf(key: string, { prob, ts }: Held): BucketState {
  const [row = 0, col = 0] = key.split(":").map(Number);
  return { rowId: row, colId: col, prob, lastUpdateTimeMs: ts };
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}
