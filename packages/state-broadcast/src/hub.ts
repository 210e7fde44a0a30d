import { type Batch, type BucketState, SharedBatch } from "./batch.js";
import { ChangeLog } from "./change-log.js";
import { BroadcastError } from "./errors.js";
import { type HubOptions, resolveHubOptions } from "./options.js";
import { createCounters, type HubCounters, type HubStats } from "./stats.js";
import {
  type CloseReason,
  HubSubscription,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionHost,
} from "./subscription.js";

/** Where a hub is in its life: created, running, or stopped for good. */
export type HubState = "idle" | "running" | "stopped";

interface NamespaceState {
  readonly subscribers: Set<HubSubscription>;
  /** What was published, as long as a subscriber may need it; in interval mode, also what awaits the flush. */
  readonly log: ChangeLog;
}

const STOPPED: CloseReason = Object.freeze({
  code: "stopped",
  message: "the broadcast hub stopped",
});

/**
 * Fans changed buckets out to every subscriber of their namespace, the
 * publisher's own stream included. Publishing never waits on a subscriber:
 * one that keeps up costs O(1) per batch (it receives the shared batch
 * object); one that falls behind keeps a cursor into the namespace's change
 * log and later reads the latest value per key. Only one that stops taking
 * (nothing taken for `maxStallMs` while updates wait) is closed with
 * `slow_consumer`; one that keeps taking, however slowly, never is.
 *
 * @example
 * ```ts
 * const hub = new Hub({ broadcastIntervalMs: 0 }).start();
 * const subscription = hub.subscribe("checkout");
 * hub.publish("checkout", 1_764_136_800_000n, [{ rowId: 0, colId: 7, prob: 0.2, lastUpdateTimeMs: 1_764_136_801_000 }]);
 * for await (const batch of subscription) console.log(batch.seed, batch.buckets);
 * ```
 */
export class Hub {
  readonly #options: HubOptions;
  readonly #counters: HubCounters = createCounters();
  readonly #namespaces = new Map<string, NamespaceState>();
  readonly #host: SubscriptionHost;
  #state: HubState = "idle";
  #subscribers = 0;
  #timerHandles: unknown[] = [];

  /** Validates `options` (throws `BroadcastError` `invalid_option`); the hub is idle until {@link Hub.start}. */
  constructor(options: Partial<HubOptions> = {}) {
    this.#options = resolveHubOptions(options);
    const { maxPendingKeysPerSubscriber, mergeAfterPendingBuckets } = this.#options;
    this.#host = {
      counters: this.#counters,
      maxStallMs: this.#options.maxStallMs,
      mergeAfterBuckets: Math.min(mergeAfterPendingBuckets, maxPendingKeysPerSubscriber),
      maxBucketsPerBatch: this.#options.maxBucketsPerBatch,
      detach: (subscription) => this.#detach(subscription),
    };
    const signal = this.#options.signal;
    if (signal?.aborted) this.#state = "stopped";
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** `idle` until started, `running`, then `stopped` for good. */
  get state(): HubState {
    return this.#state;
  }

  /**
   * Starts the flush timer (interval mode) and the stall sweep. Idempotent;
   * a stopped hub stays stopped, since a hub runs once.
   */
  start(): this {
    if (this.#state !== "idle") return this;
    this.#state = "running";
    const { broadcastIntervalMs, maxStallMs, timers } = this.#options;
    if (broadcastIntervalMs > 0) {
      this.#timerHandles.push(timers.setInterval(this.#flush, broadcastIntervalMs));
    }
    // Deliveries check for stalls too, but a namespace that goes quiet has none.
    if (Number.isFinite(maxStallMs)) {
      this.#timerHandles.push(timers.setInterval(this.#sweep, Math.max(1, maxStallMs / 4)));
    }
    return this;
  }

  /**
   * Stops for good: clears the timers, drops buffered updates and closes every
   * subscription with `stopped`, so every iteration ends. Idempotent.
   */
  stop(): void {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    for (const handle of this.#timerHandles) this.#options.timers.clearInterval(handle);
    this.#timerHandles = [];
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    for (const namespace of this.#namespaces.values()) {
      for (const subscription of namespace.subscribers) subscription.end(STOPPED);
    }
    this.#namespaces.clear();
  }

  /**
   * Subscribes to every update published to `namespace` from now on. On a
   * stopped hub (say, a stream opening during shutdown) the subscription comes
   * back already closed with `stopped`.
   *
   * @throws BroadcastError `invalid_state` before {@link Hub.start}.
   */
  subscribe(namespace: string, options: SubscribeOptions = {}): Subscription {
    if (typeof namespace !== "string") {
      throw new BroadcastError("invalid_argument", "subscribe(): namespace must be a string");
    }
    this.#checkStarted("subscribe");
    let state = this.#namespaces.get(namespace);
    if (state === undefined) {
      const subscribers = new Set<HubSubscription>();
      const log = new ChangeLog(() => {
        let oldest = Number.POSITIVE_INFINITY;
        for (const subscription of subscribers) oldest = Math.min(oldest, subscription.neededFrom);
        return oldest;
      });
      state = { subscribers, log };
    }
    const subscription = new HubSubscription(this.#host, namespace, state.log, options);
    if (this.#state === "stopped") {
      subscription.end(STOPPED);
    } else if (options.signal?.aborted) {
      subscription.close();
    } else {
      this.#namespaces.set(namespace, state);
      state.subscribers.add(subscription);
      this.#subscribers++;
    }
    return subscription;
  }

  /**
   * Publishes the changed buckets of one `(namespace, seed)`. Returns at once:
   * nothing here waits on a subscriber. The hub keeps `buckets` and its
   * objects without copying them, so do not modify them afterwards. Updates to
   * a namespace nobody subscribes to are dropped; on a stopped hub, all are.
   *
   * @throws BroadcastError `invalid_state` before {@link Hub.start}, `invalid_argument` for a non-bigint seed.
   */
  publish(namespace: string, seed: bigint, buckets: readonly BucketState[]): void {
    if (typeof seed !== "bigint" || typeof namespace !== "string" || !Array.isArray(buckets)) {
      throw new BroadcastError(
        "invalid_argument",
        "publish(): expected (namespace: string, seed: bigint, buckets: BucketState[])",
      );
    }
    this.#checkStarted("publish");
    const state = this.#namespaces.get(namespace);
    if (state === undefined || buckets.length === 0) return;
    this.#counters.bucketsPublished += buckets.length;
    const { log } = state;
    if (this.#options.broadcastIntervalMs > 0) {
      this.#counters.coalesced += log.append(seed, buckets);
      return;
    }
    this.#judge(state, this.#options.now());
    const start = log.tail;
    log.append(seed, buckets);
    log.markReadable();
    const max = this.#options.maxBucketsPerBatch;
    const batches: SharedBatch[] = [];
    for (let from = 0; from < buckets.length; from += max) {
      const chunk = buckets.length <= max ? buckets : buckets.slice(from, from + max);
      const first = start + from;
      batches.push(new SharedBatch(namespace, seed, chunk, first, first + chunk.length));
    }
    this.#deliver(state, batches);
  }

  /**
   * The batch's bytes from the configured encoder, computed once per batch
   * object: every subscriber that receives the same batch gets the same
   * `Uint8Array` (treat it as read-only).
   *
   * @throws BroadcastError `no_encoder` when the hub has no `encode` option.
   */
  encode(batch: Batch): Uint8Array {
    const encoder = this.#options.encode;
    if (encoder === undefined) {
      throw new BroadcastError(
        "no_encoder",
        "encode(): the hub was created without an encode option",
      );
    }
    return SharedBatch.encode(batch, encoder);
  }

  /** A snapshot of the counters, for metrics. */
  stats(): HubStats {
    return { subscribers: this.#subscribers, namespaces: this.#namespaces.size, ...this.#counters };
  }

  // A Set iteration skips members deleted on the way, so a subscription that
  // closes during these loops (a slow consumer cut off) is simply passed over.
  #judge(state: NamespaceState, nowMs: number): void {
    for (const subscription of state.subscribers) subscription.judge(nowMs);
  }

  #deliver(state: NamespaceState, batches: readonly SharedBatch[]): void {
    for (const subscription of state.subscribers) subscription.deliver(batches);
    if (state.log.wantsCompaction) state.log.compact();
  }

  #detach(subscription: HubSubscription): void {
    const state = this.#namespaces.get(subscription.namespace);
    if (state === undefined || !state.subscribers.delete(subscription)) return;
    this.#subscribers--;
    // Nobody left to deliver to: drop the namespace with its buffered updates.
    if (state.subscribers.size === 0) this.#namespaces.delete(subscription.namespace);
  }

  #checkStarted(call: string): void {
    if (this.#state === "idle") {
      throw new BroadcastError(
        "invalid_state",
        `${call}(): the hub is not started; call start() first`,
      );
    }
  }

  readonly #flush = (): void => {
    if (this.#state !== "running") return;
    const nowMs = this.#options.now();
    let flushed = false;
    for (const [namespace, state] of this.#namespaces) {
      const { log } = state;
      if (log.tail === log.readable) continue;
      this.#judge(state, nowMs);
      // The latest value per key published since the last flush.
      const reader = log.reader(log.readable, log.tail);
      const batches: SharedBatch[] = [];
      for (let read = log.read(reader, this.#options.maxBucketsPerBatch); read; ) {
        const next = reader.done ? undefined : log.read(reader, this.#options.maxBucketsPerBatch);
        const end = next === undefined ? reader.until : reader.start;
        batches.push(new SharedBatch(namespace, read.seed, read.buckets, reader.start, end));
        read = next;
      }
      log.markReadable();
      if (batches.length === 0) continue;
      flushed = true;
      this.#deliver(state, batches);
    }
    if (flushed) this.#counters.flushes++;
  };

  readonly #sweep = (): void => {
    if (this.#state !== "running") return;
    const nowMs = this.#options.now();
    for (const state of this.#namespaces.values()) {
      for (const subscription of state.subscribers) subscription.checkStall(nowMs);
    }
  };

  readonly #onAbort = (): void => {
    this.stop();
  };
}
