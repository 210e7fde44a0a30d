import type { Batch, SharedBatch } from "./batch.js";
import type { ChangeLog } from "./change-log.js";
import { BroadcastError } from "./errors.js";
import { Outbox } from "./outbox.js";
import type { HubCounters } from "./stats.js";

/**
 * Why a subscription ended:
 *
 * - `unsubscribed`: its consumer closed it (`close()`, leaving a `for await`
 *   loop early, or aborting the `signal` given to `subscribe`);
 * - `stopped`: the hub stopped;
 * - `slow_consumer`: it stopped taking: it held pending updates and took
 *   none for `maxStallMs` (or its consumer said it cannot keep up, with
 *   {@link Subscription.closeAsSlowConsumer}), and was cut off so it cannot
 *   hold stale state; its client should reconnect and request full state.
 *   A subscriber that keeps taking is never cut off, however far behind.
 */
export type CloseCode = "unsubscribed" | "stopped" | "slow_consumer";

/** The code and a message for people, enough for the server to pick a gRPC status. */
export interface CloseReason {
  /** See {@link CloseCode}. */
  readonly code: CloseCode;
  /** Says what happened, with the figures that tripped a limit. */
  readonly message: string;
}

/** Per-subscription options for `Hub.subscribe`. */
export interface SubscribeOptions {
  /** Closes the subscription (`unsubscribed`) when aborted, for example the stream's signal. No default. */
  readonly signal?: AbortSignal;
}

/**
 * One consumer's view of a namespace: an async iterable of {@link Batch}es.
 * Iteration ends, whatever the reason, once the subscription is closed;
 * {@link Subscription.closeReason} then says why. Updates not yet taken when it
 * closes are dropped.
 *
 * @example
 * ```ts
 * const subscription = hub.subscribe("checkout", { signal });
 * for await (const batch of subscription) await write(batch);
 * if (subscription.closeReason?.code === "slow_consumer") fail(subscription.closeReason.message);
 * ```
 *
 * @example Draining without a promise per batch:
 * ```ts
 * for (let r = await subscription.next(); !r.done; r = await subscription.next()) {
 *   write(r.value);
 *   for (let batch = subscription.poll(); batch; batch = subscription.poll()) write(batch);
 * }
 * ```
 */
export interface Subscription extends AsyncIterable<Batch> {
  /** The namespace subscribed to. */
  readonly namespace: string;
  /** Undelivered buckets: queued in shared batches, or, once behind, distinct keys past its cursor. */
  readonly pendingBuckets: number;
  /** Why it closed, or `undefined` while open. */
  readonly closeReason: CloseReason | undefined;
  /** Settles with the reason once closed; never rejects. */
  readonly closed: Promise<CloseReason>;
  /** The next batch, waiting for one if none is pending; `done` once closed. One call at a time. */
  next(): Promise<IteratorResult<Batch, undefined>>;
  /**
   * The next pending batch without waiting, or `undefined` when none is
   * pending or the subscription is closed. Taking what is already queued this
   * way skips a promise per batch (about 5x cheaper than `next()` in the
   * benchmark); pair it with `next()` to wait when nothing is pending.
   */
  poll(): Batch | undefined;
  /** Closes with `unsubscribed`; a pending `next()` resolves `done`. Idempotent. */
  close(): void;
  /**
   * Closes with `slow_consumer`, counted in `HubStats.slowConsumerCloses`
   * like the hub's own cut-offs, for a consumer that finds by a rule of its
   * own that it cannot keep up (the server: its transport has taken no
   * message for too long). `detail` says why, with the figures, and goes into
   * the reason's message. Does nothing once closed.
   */
  closeAsSlowConsumer(detail: string): void;
  /** Returns this subscription, so `for await` drains it; leaving the loop early closes it. */
  [Symbol.asyncIterator](): AsyncIterator<Batch, undefined>;
}

/** What a subscription needs from its hub. */
export interface SubscriptionHost {
  readonly counters: HubCounters;
  readonly maxStallMs: number;
  readonly mergeAfterBuckets: number;
  readonly maxBucketsPerBatch: number;
  /** Forgets a subscription that has just closed. */
  detach(subscription: HubSubscription): void;
}

const DONE: IteratorResult<Batch, undefined> = Object.freeze({ done: true, value: undefined });
const UNSUBSCRIBED: CloseReason = Object.freeze({
  code: "unsubscribed",
  message: "the subscriber closed its subscription",
});

/** The hub's {@link Subscription}: an {@link Outbox} plus the consumer's side. */
export class HubSubscription implements Subscription, AsyncIterator<Batch, undefined> {
  readonly namespace: string;
  readonly #host: SubscriptionHost;
  readonly #outbox: Outbox;
  #waiter: ((result: IteratorResult<Batch, undefined>) => void) | undefined;
  #closeReason: CloseReason | undefined;
  #closed: Promise<CloseReason> | undefined;
  #settleClosed: ((reason: CloseReason) => void) | undefined;
  #signal: AbortSignal | undefined;
  // Stall clock: when the current backlog began, or when the consumer last
  // made progress on it. A take only raises `#drained`; the next delivery or
  // sweep restarts the clock, which spares a clock read per batch taken and
  // can only make a close later, never earlier.
  #pendingSinceMs = 0;
  #drained = false;

  constructor(
    host: SubscriptionHost,
    namespace: string,
    log: ChangeLog,
    options: SubscribeOptions,
  ) {
    this.#host = host;
    this.namespace = namespace;
    this.#outbox = new Outbox(namespace, log, host.mergeAfterBuckets, host.maxBucketsPerBatch);
    const signal = options.signal;
    if (signal !== undefined) {
      this.#signal = signal;
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  get pendingBuckets(): number {
    return this.#outbox.pendingBuckets;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  get closed(): Promise<CloseReason> {
    // Made on first use: most consumers never ask.
    if (this.#closed === undefined) {
      const reason = this.#closeReason;
      this.#closed =
        reason !== undefined
          ? Promise.resolve(reason)
          : new Promise((resolve) => {
              this.#settleClosed = resolve;
            });
    }
    return this.#closed;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Batch, undefined>> {
    if (this.#closeReason !== undefined) return Promise.resolve(DONE);
    if (this.#waiter !== undefined) {
      return Promise.reject(
        new BroadcastError("invalid_state", "next() called while a previous next() is pending"),
      );
    }
    const batch = this.poll();
    if (batch !== undefined) return Promise.resolve({ done: false, value: batch });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  poll(): Batch | undefined {
    // A waiting next() means nothing is pending, and it must get the next batch.
    if (this.#closeReason !== undefined || this.#waiter !== undefined) return undefined;
    const batch = this.#outbox.take(this.#onMerged);
    if (batch !== undefined) {
      this.#drained = true;
      this.#count(batch);
    }
    return batch;
  }

  return(): Promise<IteratorResult<Batch, undefined>> {
    this.close();
    return Promise.resolve(DONE);
  }

  close(): void {
    this.end(UNSUBSCRIBED);
  }

  closeAsSlowConsumer(detail: string): void {
    if (this.#closeReason !== undefined) return;
    this.#closeSlow(detail);
  }

  /** The oldest change-log version this subscriber still needs. */
  get neededFrom(): number {
    return this.#outbox.neededFrom;
  }

  /**
   * Judges the backlog left from earlier rounds, before a round (a publish or
   * a flush) is added: falls behind onto the change log past
   * `mergeAfterPendingBuckets`, and closes as a slow consumer only if it has
   * taken nothing for `maxStallMs`. However large the backlog, a subscriber
   * that keeps taking is never closed for it: behind, it holds a cursor into
   * the shared log and costs no memory of its own (decision 6). O(1).
   */
  judge(nowMs: number): void {
    if (this.#closeReason !== undefined) return;
    const outbox = this.#outbox;
    if (outbox.isEmpty) {
      this.#pendingSinceMs = nowMs;
      this.#drained = false;
      return;
    }
    outbox.settle();
    this.checkStall(nowMs);
  }

  /**
   * Delivers a round (after {@link HubSubscription.judge}): a waiting
   * consumer gets its next batch at once, the rest is queued. O(1) per batch;
   * nothing at all for a subscriber that is behind, which reads the log.
   */
  deliver(batches: readonly SharedBatch[]): void {
    if (this.#closeReason !== undefined || batches.length === 0) return;
    const outbox = this.#outbox;
    let i = 0;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      // A waiting consumer has nothing pending: hand it the next batch.
      let first: SharedBatch | undefined;
      if (outbox.isBehind) {
        first = outbox.take(this.#onMerged);
      } else {
        first = batches[i++] as SharedBatch;
        outbox.handedOver(first);
      }
      if (first !== undefined) {
        this.#waiter = undefined;
        this.#count(first);
        waiter({ done: false, value: first });
      }
    }
    for (; i < batches.length; i++) outbox.push(batches[i] as SharedBatch);
  }

  /** Closes the subscription if it has held a backlog without draining for longer than allowed. */
  checkStall(nowMs: number): void {
    if (this.#closeReason !== undefined || this.#outbox.isEmpty) return;
    if (this.#drained) {
      this.#pendingSinceMs = nowMs;
      this.#drained = false;
      return;
    }
    const stalledMs = nowMs - this.#pendingSinceMs;
    // Behind, a backlog may turn out empty (every key superseded by what is not yet readable).
    if (stalledMs > this.#host.maxStallMs && this.#outbox.pendingBuckets > 0) {
      this.#closeSlow(
        `no batch taken for ${stalledMs} ms with ${this.#outbox.pendingBuckets} buckets pending, over the limit of ${this.#host.maxStallMs} ms`,
      );
    }
  }

  /** Closes with `reason`, drops the backlog and ends iteration. Idempotent. */
  end(reason: CloseReason): void {
    if (this.#closeReason !== undefined) return;
    this.#closeReason = reason;
    this.#outbox.clear();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
    this.#host.detach(this);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(DONE);
    this.#settleClosed?.(reason);
    this.#settleClosed = undefined;
  }

  #closeSlow(detail: string): void {
    this.#host.counters.slowConsumerCloses++;
    this.end({
      code: "slow_consumer",
      message: `subscriber to namespace "${this.namespace}" fell behind: ${detail}; reconnect and request full state`,
    });
  }

  #count(batch: Batch): void {
    const counters = this.#host.counters;
    counters.batchesDelivered++;
    counters.bucketsDelivered += batch.buckets.length;
  }

  readonly #onMerged = (updates: number): void => {
    this.#host.counters.merges += updates;
  };

  readonly #onAbort = (): void => {
    this.close();
  };
}
