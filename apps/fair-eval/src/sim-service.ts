// The State Service inside the simulation (docs/evaluation.md §2.1 mode (c)): the real aggregation store
// of `@fair/state-store`, a one-way network delay each way, and broadcasts either per applied
// update (B = 0) or coalesced per bucket and flushed at multiples of B. Each instance talks to
// it through a `StateLink`, the same interface `StateClient` implements over gRPC.
import type {
  BucketDelta,
  BucketValue,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "@fair/state-client";
import { type BucketState, InMemoryStore } from "@fair/state-store";
import type { EventQueue } from "./event-queue.js";

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
}

/** The service's traffic, for the sync-cost metric. */
export interface SimServiceStats {
  deltasReceived: number;
  /** Bucket values handed to instances (a broadcast of k buckets to N instances counts k·N). */
  bucketUpdatesDelivered: number;
  fullStateRequests: number;
}

/** A simulated State Service; `connect()` gives each instance its link. */
export class SimStateService {
  readonly stats: SimServiceStats = {
    deltasReceived: 0,
    bucketUpdatesDelivered: 0,
    fullStateRequests: 0,
  };
  readonly #queue: EventQueue;
  readonly #options: SimServiceOptions;
  readonly #store: InMemoryStore;
  readonly #links: SimLink[] = [];
  // Changed buckets awaiting the next flush: seed → (row, col) key → latest value.
  readonly #dirty = new Map<bigint, Map<number, BucketState>>();
  #flushAt = Number.NaN;

  constructor(queue: EventQueue, options: SimServiceOptions) {
    this.#queue = queue;
    this.#options = options;
    this.#store = new InMemoryStore({
      windowMs: options.windowMs,
      decayRatePerSecond: options.decayRatePerSecond,
      now: () => queue.now,
    });
  }

  /** A new instance's link. */
  connect(): StateLink {
    const link = new SimLink(this, this.#queue, this.#options.delayMs);
    this.#links.push(link);
    return link;
  }

  /** An update arriving at the server: apply, then broadcast now or at the next flush. */
  receive(seed: bigint, deltas: readonly BucketDelta[]): void {
    this.stats.deltasReceived += deltas.length;
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

  /** A full-state request arriving at the server: answer the requester only. */
  answer(link: SimLink, seed: bigint, resolve: (buckets: readonly BucketValue[]) => void): void {
    this.stats.fullStateRequests++;
    const buckets = this.#store.getSeed(seed);
    this.#queue.schedule(this.#queue.now + this.#options.delayMs, () => {
      link.deliver(seed, buckets, true);
      resolve(buckets);
    });
  }

  #flush(): void {
    this.#flushAt = Number.NaN;
    for (const [seed, pending] of this.#dirty) this.#broadcast(seed, [...pending.values()]);
    this.#dirty.clear();
  }

  // Every instance, the sender included, gets the same values after the same delay.
  #broadcast(seed: bigint, buckets: readonly BucketState[]): void {
    this.stats.bucketUpdatesDelivered += buckets.length * this.#links.length;
    this.#queue.schedule(this.#queue.now + this.#options.delayMs, () => {
      for (const link of this.#links) link.deliver(seed, buckets, false);
    });
  }
}

/** One instance's side of the simulated network. */
class SimLink implements StateLink {
  readonly status: LinkStatus = "connected";
  readonly #service: SimStateService;
  readonly #queue: EventQueue;
  readonly #delayMs: number;
  readonly #listeners = new Set<StateLinkListener>();

  constructor(service: SimStateService, queue: EventQueue, delayMs: number) {
    this.#service = service;
    this.#queue = queue;
    this.#delayMs = delayMs;
  }

  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void {
    this.#queue.schedule(this.#queue.now + this.#delayMs, () =>
      this.#service.receive(seed, deltas),
    );
  }

  requestFullState(seed: bigint): Promise<readonly BucketValue[]> {
    return new Promise((resolve) => {
      this.#queue.schedule(this.#queue.now + this.#delayMs, () =>
        this.#service.answer(this, seed, resolve),
      );
    });
  }

  subscribe(listener: StateLinkListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  deliver(seed: bigint, buckets: readonly BucketValue[], fullState: boolean): void {
    for (const listener of this.#listeners) listener.onStateUpdate?.(seed, buckets, fullState);
  }
}
