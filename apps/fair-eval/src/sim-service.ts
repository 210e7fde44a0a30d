// The State Service inside the simulation (docs/evaluation.md §2.1 mode (c)): the real aggregation store
// of `@fair/state-store`, a one-way network delay each way, and broadcasts either per applied
// update (B = 0) or coalesced per bucket and flushed at multiples of B. Each instance talks to
// it through a `StateLink`, the same interface `StateClient` implements over gRPC.
//
// With `storeFlushMs` > 0 the service models a store replica that coalesces before the store
// (the Redis store's `redisFlushIntervalMs`): the deltas it receives are summed per bucket as
// `PendingDeltas` sums them (`src/coalesce.ts`) and applied once per interval, at multiples of
// `storeFlushMs`, as one `DeltaUpdate` per seed; their broadcasts follow those applies.
//
// With a fault (docs/evaluation.md §2.9, `src/faults.ts`) the service goes down, comes back with a
// new store (a new epoch: empty, or restored from its last snapshot), or loses its store's data
// while staying up; links hold their adjustments meanwhile, reconnect, and — in the `after`
// variant — offer their state to the new epoch before they ask for it again (learning mode).
import type {
  BucketDelta,
  BucketValue,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "@fair/state-client";
import { type BucketState, InMemoryStore } from "@fair/state-store";
import { type Coalesced, coalesce } from "./coalesce.js";
import type { EventQueue } from "./event-queue.js";
import {
  type FaultPlan,
  failedAttemptOffsets,
  oldMaxSendAttempts,
  reconnectStepMs,
  snapshotIntervalMs,
} from "./faults.js";

/** How the simulated service behaves. */
export interface SimServiceOptions {
  /** One-way network delay, client → server and server → client, ms. */
  readonly delayMs: number;
  /** 0: broadcast after every applied update; otherwise flush changed buckets every `batchMs`. */
  readonly batchMs: number;
  /** The window (seed) length, ms: the trackers' rotation period. */
  readonly windowMs: number;
  /** The store's λ per second; 0 for the `naive` and `nodecay` controls, whose server never decays. */
  readonly decayRatePerSecond: number;
  /** A fault to inject on the simulated clock; none by default. */
  readonly fault?: FaultPlan;
  /**
   * 0 (the default): every update is applied to the store on arrival. Otherwise the deltas that
   * arrive are coalesced per (seed, row, col), `Σ aⱼ·e^(−λ(t_max − tⱼ)/1000)` stamped `t_max`, and
   * applied at multiples of `storeFlushMs` as one update per seed: a replica's
   * `redisFlushIntervalMs`. A bucket is then clamped to [0, 1] once per interval.
   */
  readonly storeFlushMs?: number;
}

/** The service's traffic, for the sync-cost metric. */
export interface SimServiceStats {
  /** Delta updates (`DeltaUpdate` messages) that reached the server, and the bucket deltas in them. */
  updatesReceived: number;
  deltasReceived: number;
  /**
   * Updates applied to the store (`storeFlushMs` = 0: every update received; otherwise one per
   * seed per flush), and the bucket deltas in them (otherwise one per bucket per flush).
   */
  storeUpdatesApplied: number;
  storeDeltasApplied: number;
  /** Bucket values handed to instances (a broadcast of k buckets to N instances counts k·N). */
  bucketUpdatesDelivered: number;
  fullStateRequests: number;
  /** State offers received (learning mode), and the buckets they raised. */
  offersReceived: number;
  bucketsRaisedByOffers: number;
  /** Held adjustments (coalesced buckets) links dropped after `maxSendAttempts` failed attempts. */
  heldBucketsDropped: number;
}

/** A simulated State Service; `connect()` gives each instance its link. */
export class SimStateService {
  readonly stats: SimServiceStats = {
    updatesReceived: 0,
    deltasReceived: 0,
    storeUpdatesApplied: 0,
    storeDeltasApplied: 0,
    bucketUpdatesDelivered: 0,
    fullStateRequests: 0,
    offersReceived: 0,
    bucketsRaisedByOffers: 0,
    heldBucketsDropped: 0,
  };
  readonly #queue: EventQueue;
  readonly #options: SimServiceOptions;
  #store: InMemoryStore;
  /** False while the server is down or unreachable: nothing reaches it. */
  #up = true;
  #snapshot: Uint8Array | undefined;
  #recoveryMs: number | null = null;
  readonly #links: SimLink[] = [];
  // Changed buckets awaiting the next flush: seed → (row, col) key → latest value.
  readonly #dirty = new Map<bigint, Map<number, BucketState>>();
  #flushAt = Number.NaN;
  // With `storeFlushMs`: deltas received and not yet applied, seed → (row, col) key → their sum.
  readonly #unapplied = new Map<bigint, Map<number, PendingBucket>>();
  #applyAt = Number.NaN;
  readonly #decayPerMs: number;

  constructor(queue: EventQueue, options: SimServiceOptions) {
    this.#queue = queue;
    this.#options = options;
    this.#decayPerMs = options.decayRatePerSecond / 1000;
    this.#store = this.#newStore();
    const fault = options.fault;
    if (fault !== undefined) {
      if (fault.snapshot) {
        // The server's snapshot timer; only the last one before the fault matters.
        for (let t = snapshotIntervalMs; t <= fault.atMs; t += snapshotIntervalMs) {
          queue.schedule(t, () => {
            this.#snapshot = this.#store.snapshot();
          });
        }
      }
      queue.schedule(fault.atMs, () => this.#fail(fault));
    }
  }

  /** A new instance's link. */
  connect(): StateLink {
    const link = new SimLink(this, this.#queue, this.#options, this.#links.length);
    this.#links.push(link);
    return link;
  }

  /** Whether messages reach the server now. */
  get up(): boolean {
    return this.#up;
  }

  /** The current store's epoch (`fair-state-epoch`). */
  get epoch(): string {
    return this.#store.epochs.current.id;
  }

  /** With a fault: when every link was connected to the service again, ms; otherwise null. */
  get recoveryMs(): number | null {
    return this.#recoveryMs;
  }

  /**
   * An update arriving at the server: apply (now, or coalesced at the next store flush), then
   * broadcast now or at the next broadcast flush.
   */
  receive(seed: bigint, deltas: readonly BucketDelta[]): void {
    this.stats.updatesReceived++;
    this.stats.deltasReceived += deltas.length;
    if ((this.#options.storeFlushMs ?? 0) > 0) {
      this.#coalesce(seed, deltas);
      return;
    }
    this.stats.storeUpdatesApplied++;
    this.stats.storeDeltasApplied += deltas.length;
    const changed: BucketState[] = [];
    for (const d of deltas) {
      const { bucket } = this.#store.applyDelta(
        seed,
        d.rowId,
        d.colId,
        d.deltaProb,
        d.lastUpdateTimeMs,
      );
      if (bucket !== undefined) changed.push(bucket);
    }
    this.#publish(seed, changed);
  }

  /** Sums `deltas` into what waits for the next store flush, which it schedules if need be. */
  #coalesce(seed: bigint, deltas: readonly BucketDelta[]): void {
    let pending = this.#unapplied.get(seed);
    if (pending === undefined) {
      pending = new Map();
      this.#unapplied.set(seed, pending);
    }
    for (const d of deltas) {
      const key = d.rowId * 2 ** 24 + d.colId;
      const bucket = pending.get(key);
      if (bucket === undefined) {
        pending.set(key, {
          rowId: d.rowId,
          colId: d.colId,
          sum: d.deltaProb,
          timeMs: d.lastUpdateTimeMs,
        });
      } else {
        coalesce(bucket, d.deltaProb, d.lastUpdateTimeMs, this.#decayPerMs);
      }
    }
    if (Number.isNaN(this.#applyAt)) {
      const interval = this.#options.storeFlushMs as number;
      this.#applyAt = (Math.floor(this.#queue.now / interval) + 1) * interval;
      this.#queue.schedule(this.#applyAt, () => this.#applyUnapplied());
    }
  }

  /**
   * The store flush: each seed's sums as one update, each bucket once, sent clamped to ±1 as the
   * client sends its coalesced sums (the store refuses larger deltas); then their broadcasts.
   */
  #applyUnapplied(): void {
    this.#applyAt = Number.NaN;
    const seeds = [...this.#unapplied];
    this.#unapplied.clear();
    for (const [seed, pending] of seeds) {
      if (pending.size === 0) continue;
      const deltas = [...pending.values()].map((b) => ({
        rowId: b.rowId,
        colId: b.colId,
        deltaProb: Math.max(-1, Math.min(1, b.sum)),
        lastUpdateTimeMs: b.timeMs,
      }));
      this.stats.storeUpdatesApplied++;
      this.stats.storeDeltasApplied += deltas.length;
      const { buckets } = this.#store.applyUpdate({ seed, deltas });
      this.#publish(seed, buckets);
    }
  }

  /** A state offer arriving at the server: merged by maximum; the raised buckets go out as usual. */
  offer(seed: bigint, buckets: readonly BucketValue[]): void {
    this.stats.offersReceived++;
    const { buckets: raised } = this.#store.applyOffer({ seed, buckets });
    this.stats.bucketsRaisedByOffers += raised.length;
    this.#publish(seed, raised);
  }

  /** A full-state request arriving at the server on `connection`: answer the requester only. */
  answer(link: SimLink, seed: bigint, connection: number): void {
    this.stats.fullStateRequests++;
    const buckets = this.#store.getSeed(seed);
    this.#queue.schedule(this.#queue.now + this.#options.delayMs, () =>
      link.reply(seed, buckets, connection),
    );
  }

  /** A link dropped a held bucket (the old client's `maxSendAttempts`). */
  countDropped(buckets: number): void {
    this.stats.heldBucketsDropped += buckets;
  }

  #newStore(): InMemoryStore {
    const queue = this.#queue;
    return new InMemoryStore({
      windowMs: this.#options.windowMs,
      decayRatePerSecond: this.#options.decayRatePerSecond,
      now: () => queue.now,
    });
  }

  /**
   * The fault at `plan.atMs`. A restart or an outage makes the server unreachable for
   * `downMs`; a restart then starts a new store (a new epoch), restored from the last snapshot
   * or empty. Data loss replaces the store at once while the server stays up: today's server
   * sees the new epoch and ends every stream; before epochs (`before`) it could not tell, so
   * the streams stay open and the empty store's values reach instances as buckets change.
   * Broadcasts waiting for a flush go with the store or the process. Deltas waiting for a store
   * flush go with the process (a restart); through an outage or a data loss the process keeps
   * them and applies them at the flush, to the new store after a data loss.
   */
  #fail(plan: FaultPlan): void {
    const queue = this.#queue;
    const backMs = plan.atMs + plan.downMs;
    this.#dirty.clear();
    if (plan.downMs > 0 && plan.newStore) this.#unapplied.clear();
    this.#recoveryMs = backMs + reconnectStepMs * this.#links.length;
    if (plan.downMs === 0) {
      this.#store = this.#newStore();
      if (plan.variant === "before") return;
    } else {
      this.#up = false;
      queue.schedule(backMs, () => {
        if (plan.newStore) {
          this.#store = this.#newStore();
          if (plan.snapshot && this.#snapshot !== undefined) this.#store.restore(this.#snapshot);
        }
        this.#up = true;
      });
    }
    this.#links.forEach((link, k) => {
      link.lose(backMs, plan.variant === "before");
      queue.schedule(backMs + reconnectStepMs * (k + 1), () =>
        link.reconnect(plan.variant === "after"),
      );
    });
  }

  #publish(seed: bigint, changed: readonly BucketState[]): void {
    if (changed.length === 0) return;
    if (this.#options.batchMs === 0) {
      this.#broadcast(seed, changed);
      return;
    }
    let pending = this.#dirty.get(seed);
    if (pending === undefined) {
      pending = new Map();
      this.#dirty.set(seed, pending);
    }
    for (const bucket of changed) pending.set(bucket.rowId * 2 ** 24 + bucket.colId, bucket);
    if (Number.isNaN(this.#flushAt)) {
      const batch = this.#options.batchMs;
      this.#flushAt = (Math.floor(this.#queue.now / batch) + 1) * batch;
      this.#queue.schedule(this.#flushAt, () => this.#flush());
    }
  }

  #flush(): void {
    this.#flushAt = Number.NaN;
    for (const [seed, pending] of this.#dirty) this.#broadcast(seed, [...pending.values()]);
    this.#dirty.clear();
  }

  // Every connected instance, the sender included, gets the same values after the same delay.
  #broadcast(seed: bigint, buckets: readonly BucketState[]): void {
    const to = this.#links.filter((link) => link.status === "connected");
    const connections = to.map((link) => link.connection);
    this.stats.bucketUpdatesDelivered += buckets.length * to.length;
    this.#queue.schedule(this.#queue.now + this.#options.delayMs, () => {
      to.forEach((link, i) => {
        link.deliver(seed, buckets, connections[i] as number);
      });
    });
  }
}

/** A bucket's coalesced adjustment as of `timeMs` (`src/coalesce.ts`). */
interface PendingBucket extends Coalesced {
  readonly rowId: number;
  readonly colId: number;
}

/** One held adjustment, and the failed attempts it waited through. */
interface HeldBucket extends PendingBucket {
  attempts: number;
}

/**
 * One instance's side of the simulated network. While disconnected it holds adjustments
 * coalesced per bucket, as `@fair/state-client`'s `PendingDeltas` does: `Σ aⱼ·e^(−λ(t_max −
 * tⱼ)/1000)` stamped `t_max` (`src/coalesce.ts`). Every loss and reconnect starts a new connection; whatever was in
 * flight on an older one (either way) is lost with it.
 */
class SimLink implements StateLink {
  #status: LinkStatus = "connected";
  /** Bumped by every loss and reconnect; a message is delivered only on the connection it left on. */
  connection = 0;
  readonly #service: SimStateService;
  readonly #queue: EventQueue;
  readonly #delayMs: number;
  readonly #decayPerMs: number;
  readonly #listeners = new Set<StateLinkListener>();
  /** Every seed asked for: asked again after each reconnect. */
  readonly #seeds = new Set<bigint>();
  /** Requests not yet answered, per seed. */
  readonly #waiting = new Map<bigint, ((buckets: readonly BucketValue[]) => void)[]>();
  readonly #held = new Map<bigint, Map<number, HeldBucket>>();
  #epoch: string;
  #offering = false;

  constructor(
    service: SimStateService,
    queue: EventQueue,
    options: SimServiceOptions,
    readonly index: number,
  ) {
    this.#service = service;
    this.#queue = queue;
    this.#delayMs = options.delayMs;
    this.#decayPerMs = options.decayRatePerSecond / 1000;
    this.#epoch = service.epoch;
  }

  get status(): LinkStatus {
    return this.#status;
  }

  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void {
    if (this.#status === "connected") {
      this.#toServer(() => this.#service.receive(seed, deltas));
      return;
    }
    for (const d of deltas) this.#hold(seed, d);
  }

  requestFullState(seed: bigint): Promise<readonly BucketValue[]> {
    this.#seeds.add(seed);
    return new Promise((resolve) => {
      const waiting = this.#waiting.get(seed);
      if (waiting === undefined) this.#waiting.set(seed, [resolve]);
      else waiting.push(resolve);
      if (this.#status === "connected") this.#request(seed);
    });
  }

  offerState(seed: bigint, buckets: readonly BucketValue[]): void {
    // As the real client: offers go out only from inside onEpochChange.
    if (!this.#offering) return;
    // As the real client: net of the adjustments still held, which follow as deltas.
    const held = this.#held.get(seed);
    const copy = buckets.map((b) => {
      const pending = held?.get(b.rowId * 2 ** 24 + b.colId);
      if (pending === undefined) return { ...b };
      const at = Math.max(b.lastUpdateTimeMs, pending.timeMs);
      const view = b.prob * Math.exp(-this.#decayPerMs * (at - b.lastUpdateTimeMs));
      const sent = pending.sum * Math.exp(-this.#decayPerMs * (at - pending.timeMs));
      return { ...b, prob: Math.min(1, Math.max(0, view - sent)), lastUpdateTimeMs: at };
    });
    this.#toServer(() => this.#service.offer(seed, copy));
  }

  subscribe(listener: StateLinkListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A broadcast arriving; dropped if it left on a connection since lost. */
  deliver(seed: bigint, buckets: readonly BucketValue[], connection: number): void {
    if (connection !== this.connection) return;
    for (const listener of this.#listeners) listener.onStateUpdate?.(seed, buckets, false);
  }

  /**
   * A full-state reply arriving. Replies to requests on an earlier connection are dropped: after
   * an epoch change that includes every request made before the offers (the real client sends its
   * requests before it learns the epoch, and marks their replies stale instead).
   */
  reply(seed: bigint, buckets: readonly BucketValue[], connection: number): void {
    if (connection !== this.connection) return;
    for (const listener of this.#listeners) listener.onStateUpdate?.(seed, buckets, true);
    const waiting = this.#waiting.get(seed);
    this.#waiting.delete(seed);
    for (const resolve of waiting ?? []) resolve(buckets);
  }

  /**
   * The server is gone until `backMs`. With `dropHeld` (the old client), every failed
   * reconnect attempt before then counts against each held bucket, which goes once it has
   * waited through `maxSendAttempts` of them.
   */
  lose(backMs: number, dropHeld: boolean): void {
    this.connection++;
    this.#setStatus("disconnected");
    if (!dropHeld) return;
    const lostAt = this.#queue.now;
    for (const offset of failedAttemptOffsets(backMs - lostAt)) {
      this.#queue.schedule(lostAt + offset, () => this.#failedAttempt());
    }
  }

  /**
   * Connected again. With `learning`, a new epoch is announced to listeners first, who offer
   * what they hold; then every seed asked for is asked again, then held adjustments go.
   */
  reconnect(learning: boolean): void {
    this.connection++;
    this.#setStatus("connected");
    const epoch = this.#service.epoch;
    const previous = this.#epoch;
    this.#epoch = epoch;
    if (learning && epoch !== previous) {
      this.#offering = true;
      try {
        for (const listener of this.#listeners) listener.onEpochChange?.(epoch, previous);
      } finally {
        this.#offering = false;
      }
    }
    for (const seed of this.#seeds) this.#request(seed);
    for (const [seed, buckets] of this.#held) {
      const deltas: BucketDelta[] = [...buckets.values()].map((b) => ({
        rowId: b.rowId,
        colId: b.colId,
        deltaProb: Math.max(-1, Math.min(1, b.sum)),
        lastUpdateTimeMs: b.timeMs,
      }));
      this.#toServer(() => this.#service.receive(seed, deltas));
    }
    this.#held.clear();
  }

  #setStatus(status: LinkStatus): void {
    this.#status = status;
    for (const listener of this.#listeners) listener.onStatusChange?.(status);
  }

  #toServer(run: () => void): void {
    const connection = this.connection;
    this.#queue.schedule(this.#queue.now + this.#delayMs, () => {
      if (connection === this.connection && this.#service.up) run();
    });
  }

  #request(seed: bigint): void {
    const connection = this.connection;
    this.#toServer(() => this.#service.answer(this, seed, connection));
  }

  #hold(seed: bigint, d: BucketDelta): void {
    let buckets = this.#held.get(seed);
    if (buckets === undefined) {
      buckets = new Map();
      this.#held.set(seed, buckets);
    }
    const key = d.rowId * 2 ** 24 + d.colId;
    const held = buckets.get(key);
    const t = d.lastUpdateTimeMs;
    if (held === undefined) {
      buckets.set(key, {
        rowId: d.rowId,
        colId: d.colId,
        sum: d.deltaProb,
        timeMs: t,
        attempts: 0,
      });
    } else {
      coalesce(held, d.deltaProb, t, this.#decayPerMs);
    }
  }

  #failedAttempt(): void {
    let dropped = 0;
    for (const [seed, buckets] of this.#held) {
      for (const [key, bucket] of buckets) {
        bucket.attempts++;
        if (bucket.attempts >= oldMaxSendAttempts) {
          buckets.delete(key);
          dropped++;
        }
      }
      if (buckets.size === 0) this.#held.delete(seed);
    }
    this.#service.countDropped(dropped);
  }
}
