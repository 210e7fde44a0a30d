import { Code, ConnectError } from "@connectrpc/connect";
import type { Batch, Hub, Subscription } from "@fair/state-broadcast";
import type {
  DeltaUpdateInput,
  OfferResult,
  SeedCursor,
  SeedPage,
  StateOfferInput,
  StoreNamespace,
  UpdateResult,
} from "@fair/state-store";
import type { SyncMetrics } from "./metrics.js";
import type { NamespaceSeries } from "./namespace-metrics.js";
import type { RequestRate } from "./request-rate.js";
import type { SyncEncoding } from "./responses.js";
import type { SyncRequestInput } from "./sync-request-decoder.js";
import { closeReasonToStatus, codeLabel, storeErrorToStatus } from "./to-status.js";

/** Most buckets one coalesced broadcast carries: about 100 KiB on the wire. */
const COALESCE_MAX_BUCKETS = 4096;

/**
 * Most updates and offers of one stream the store works on at once. With a
 * Redis store that coalesces for 5 ms, one at a time held a stream to
 * about one update per flush cycle (~12 ms: 8k deltas/s at 100 per
 * message, measured by `pnpm bench`); eight keep a stream's decoded
 * messages in flight bounded while a cycle takes eight.
 */
const maxAppliesInFlight = 8;

/** What one stream needs from the server around it; `Out` is a message of its transport. */
export interface SyncStreamDeps<Out> {
  readonly namespace: string;
  readonly store: StoreNamespace;
  readonly hub: Hub;
  readonly metrics: SyncMetrics;
  /** This stream's namespace's series of the `fair_state_namespace_*` metrics. */
  readonly series: NamespaceSeries;
  /** Whether to publish applied buckets to the hub (false when the store's change feed does). */
  readonly publishApplied: boolean;
  /** Most deltas in one DeltaUpdate, and buckets in one StateOffer. */
  readonly maxDeltasPerMessage: number;
  /** Buckets in one full-state part, for this stream's encoding (`bucketsPerPart`). */
  readonly bucketsPerPart: number;
  /** Admits each request, or refuses one over the stream's rate. */
  readonly rate: RequestRate;
  /** How broadcasts and full-state replies become messages. */
  readonly encoding: SyncEncoding<Out>;
  /** Called when the stream is cut off as a slow consumer (by the hub or {@link SyncStream.checkStall}). */
  readonly onCutOff: () => void;
  /** Whether updates and offers may still be applied: false once the server is stopping. */
  readonly accepting: () => boolean;
  /** The clock of the stall limit, in ms. */
  readonly now: () => number;
}

/** A reply to a StateRequest being sent, one page of the seed per part. */
interface Reply {
  readonly seed: bigint;
  /** Where the next page starts; `undefined` before the first. */
  cursor: SeedCursor | undefined;
  /** Buckets of broadcasts that may still go before the next part. */
  broadcastBudget: number;
}

/**
 * One client's `Sync` stream. Two loops share it: the reader applies the
 * client's `DeltaUpdate`s and `StateOffer`s and queues its `StateRequest`s; the writer sends
 * full-state replies to this client and the hub's broadcasts. The writer is
 * an async generator, resumed only when the transport has taken its last
 * message (the gRPC path waits for "drain", and so does connect-node), and
 * it makes each message only then: it pulls from the hub only when it can
 * write — so a slow client backs up in the hub (which keeps a cursor and
 * later the latest value per key for it), never here — and it reads a
 * full-state reply from the store one page per message, so an unread reply
 * holds one part, whatever the size of the seed.
 */
export class SyncStream<Out> {
  readonly #deps: SyncStreamDeps<Out>;
  readonly #subscription: Subscription;
  readonly #stateRequests: bigint[] = [];
  #readerDone = false;
  #failure: ConnectError | undefined;
  #wake: (() => void) | undefined;
  /** An outstanding `subscription.next()`, and its result once settled. */
  #next: Promise<IteratorResult<Batch, undefined>> | undefined;
  #nextResult: IteratorResult<Batch, undefined> | undefined;
  /** A batch taken while coalescing that belongs to another seed: sent next. */
  #carry: Batch | undefined;
  /** Buckets in the last message {@link SyncStream.#coalesced} made. */
  #coalescedBuckets = 0;
  /** The StateRequest being answered. */
  #reply: Reply | undefined;
  /** When the transport was handed the message it has not yet taken; -1 while none waits. */
  #handedOutAtMs = -1;

  constructor(deps: SyncStreamDeps<Out>, signal: AbortSignal) {
    this.#deps = deps;
    this.#subscription = deps.hub.subscribe(deps.namespace, { signal });
    const { onCutOff } = deps;
    void this.#subscription.closed.then((reason) => {
      if (reason.code === "slow_consumer") onCutOff();
    });
  }

  /**
   * Runs the stream: returns when the client ends its side (after answering
   * every StateRequest it sent), throws the status that ends it otherwise.
   */
  async *run(requests: AsyncIterable<SyncRequestInput>): AsyncGenerator<Out> {
    // Not awaited: #read never rejects, and once the writer is done the
    // stream's context is aborted, which ends the request side too.
    void this.#read(requests);
    const { now } = this.#deps;
    try {
      for (;;) {
        if (this.#failure) throw this.#failure;
        let message: Out;
        if (this.#reply === undefined) {
          const seed = this.#stateRequests.shift();
          if (seed !== undefined) this.#reply = this.#startReply(seed);
        }
        const reply = this.#reply;
        if (reply !== undefined) {
          message = this.#replyBroadcast(reply) ?? (await this.#part(reply));
        } else {
          if (this.#readerDone) return;
          const batch = this.#takeReady();
          if (batch === undefined) {
            if (this.#endIfClosed()) return;
            await this.#event();
            continue;
          }
          message = this.#coalesced(batch);
        }
        // The stall clock runs from here until the transport takes the message.
        this.#handedOutAtMs = now();
        yield message;
        this.#handedOutAtMs = -1;
        if (this.#endIfClosed()) return;
      }
    } finally {
      this.#subscription.close();
    }
  }

  /**
   * Cuts the stream off as a slow consumer if its transport has left a
   * message untaken for more than `maxStallMs`: through the hub
   * subscription, so it is counted with the hub's own cut-offs and resets a
   * stream that cannot drain (`onCutOff`). The writer, resumed once the
   * transport gives up, ends with RESOURCE_EXHAUSTED. O(1); the service's
   * sweep calls it for every stream.
   */
  checkStall(nowMs: number, maxStallMs: number): void {
    const since = this.#handedOutAtMs;
    if (since < 0) return;
    const waitedMs = nowMs - since;
    if (waitedMs <= maxStallMs) return;
    this.#subscription.closeAsSlowConsumer(
      `its transport has taken no message for ${waitedMs} ms, over the limit of ${maxStallMs} ms (maxStallMs)`,
    );
  }

  /**
   * Ends the stream with `status` (the store's epoch changed under it): the
   * writer throws it at its next turn, and no request read from now on is
   * applied. A stream already failing keeps its own status.
   */
  end(status: ConnectError): void {
    this.#failure ??= status;
    this.#notify();
  }

  /** Whether the subscription is closed; throws the status that ends the stream if it must. */
  #endIfClosed(): boolean {
    const reason = this.#subscription.closeReason;
    if (reason === undefined) return false;
    const status = closeReasonToStatus(reason);
    if (status) throw status;
    return true;
  }

  /*
   * Answering a StateRequest, one page of the store per part, each read only
   * once the transport has taken the message before it. Broadcasts already
   * queued when the request is taken go first; while the reply is sent,
   * broadcasts ready between two parts go in between (up to one part's worth
   * of buckets each time), which keeps the hub subscription draining, so the
   * hub never takes a stream busy with a long reply for a stopped one.
   *
   * Why the client still ends with the latest value of every key. Nothing
   * is taken from the hub between starting a page's read and yielding its
   * part, so every broadcast the client got before a part was published —
   * hence applied — before that page was read: the part's values are at
   * least as new as any the client already holds. Every value a part
   * carries has its broadcast already sent or queued (or, published from
   * before this stream subscribed, superseded by what the part carries):
   * a queued one may carry an older value than the part and reach the
   * client after it, but the hub publishes in the order the store applied
   * and never drops a key's latest value for a subscriber, so the part's
   * value, or a newer one, follows it. Values applied after a page was read
   * reach the client after its part the same way. So the last message that
   * carries a key carries its latest value. (A client must therefore apply
   * every message as it arrives, parts and broadcasts in order, as
   * `@fair/state-client` does.)
   */

  #startReply(seed: bigint): Reply {
    // What is queued now goes before the reply: counted, not taken, so a
    // stream far behind holds one batch at a time here too.
    let queued = this.#subscription.pendingBuckets + (this.#carry?.buckets.length ?? 0);
    const settled = this.#nextResult;
    if (settled !== undefined && !settled.done) queued += settled.value.buckets.length;
    return { seed, cursor: undefined, broadcastBudget: queued };
  }

  /** A broadcast to send before the reply's next part, if one is ready and the budget allows. */
  #replyBroadcast(reply: Reply): Out | undefined {
    if (reply.broadcastBudget <= 0) return undefined;
    const batch = this.#takeReady();
    if (batch === undefined) {
      reply.broadcastBudget = 0;
      return undefined;
    }
    const message = this.#coalesced(batch);
    reply.broadcastBudget -= this.#coalescedBuckets;
    return message;
  }

  /** The reply's next part: one page of the seed, read now. An unknown seed gets one empty part. */
  async #part(reply: Reply): Promise<Out> {
    const { store, encoding, bucketsPerPart, metrics } = this.#deps;
    let page: SeedPage;
    try {
      page = await store.readSeed(reply.seed, reply.cursor, bucketsPerPart);
    } catch (error) {
      // A remote store that cannot answer: UNAVAILABLE, so the client asks again.
      const status = storeErrorToStatus(error, "state_request");
      if (status.code === Code.Unavailable) metrics.storeUnavailable.labels("get_seed").inc();
      throw status;
    }
    const last = page.next === undefined;
    if (last) this.#reply = undefined;
    else {
      reply.cursor = page.next;
      reply.broadcastBudget = bucketsPerPart;
    }
    metrics.fullStateBucketsSent.inc(page.buckets.length);
    return encoding.fullStatePart(reply.seed, page.buckets, last);
  }

  /**
   * `batch` and the batches of the same seed that are ready right behind it,
   * as one message, up to {@link COALESCE_MAX_BUCKETS} buckets; the first
   * batch of another seed waits for the next turn.
   */
  #coalesced(batch: Batch): Out {
    const { coalesce } = this.#deps.encoding;
    if (coalesce === undefined) {
      this.#coalescedBuckets = batch.buckets.length;
      return this.#deps.encoding.broadcast(batch);
    }
    const batches = [batch];
    let buckets = batch.buckets.length;
    while (buckets < COALESCE_MAX_BUCKETS) {
      const next = this.#takeReady();
      if (next === undefined) break;
      if (next.seed !== batch.seed) {
        this.#carry = next;
        break;
      }
      batches.push(next);
      buckets += next.buckets.length;
    }
    this.#coalescedBuckets = buckets;
    return coalesce(batches);
  }

  /** A batch the hub has ready for this stream, without waiting. */
  #takeReady(): Batch | undefined {
    const carried = this.#carry;
    if (carried) {
      this.#carry = undefined;
      return carried;
    }
    if (this.#next) {
      const result = this.#nextResult;
      if (result === undefined) return undefined;
      this.#next = this.#nextResult = undefined;
      return result.done ? undefined : result.value;
    }
    return this.#subscription.poll();
  }

  /** Waits for a broadcast, a StateRequest, the reader's end or a failure. */
  #event(): Promise<void> {
    if (!this.#next) {
      const next = this.#subscription.next();
      this.#next = next;
      next.then((result) => {
        if (this.#next === next) this.#nextResult = result;
        this.#notify();
      }, this.#notify);
    }
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  readonly #notify = (): void => {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };

  async #read(requests: AsyncIterable<SyncRequestInput>): Promise<void> {
    // Updates and offers go to the store in order without waiting for the
    // one before to finish, up to maxAppliesInFlight at once: a store that
    // answers later (a Redis round trip, a coalescing interval) then costs
    // a stream latency, not throughput. A StateRequest waits for them all,
    // so the state it answers with holds every update sent before it.
    const inFlight: Promise<void>[] = [];
    const settle = async () => {
      while (inFlight.length > 0) await inFlight.shift();
    };
    const admit = async (applying: Promise<void>) => {
      // A failure ends the stream at once, even while the reader waits for
      // the client's next message: the writer wakes and throws it.
      inFlight.push(
        applying.then(() => {
          if (this.#failure) this.#notify();
        }),
      );
      if (inFlight.length >= maxAppliesInFlight) await inFlight.shift();
    };
    try {
      for await (const message of requests) {
        // Ended meanwhile (an epoch change): nothing more is applied.
        if (this.#failure) return;
        if (!this.#deps.rate.take()) {
          this.#deps.metrics.streamsRefused.labels("max_requests_per_second").inc();
          throw new ConnectError(
            "more requests per second on this stream than maxRequestsPerSecond allows; send fewer, larger messages",
            Code.ResourceExhausted,
          );
        }
        const { request } = message;
        if (request.case === "deltaUpdate") {
          await admit(this.#apply(request.value));
        } else if (request.case === "stateOffer") {
          await admit(this.#offer(request.value));
        } else if (request.case === "stateRequest") {
          await settle();
          this.#deps.metrics.fullStateRequests.inc();
          this.#deps.series.fullStateRequests.inc();
          this.#stateRequests.push(request.value.seed);
          this.#notify();
        }
        // A message with neither case set carries nothing: ignore it.
        if (this.#failure) return;
      }
      await settle();
      if (this.#failure) return;
      this.#readerDone = true;
    } catch (error) {
      this.#failure ??= ConnectError.from(error);
    } finally {
      // Applies still running end on their own (each catches its failure);
      // the stream's end waits for none of them.
      this.#notify();
    }
  }

  async #apply(update: DeltaUpdateInput): Promise<void> {
    const received = performance.now();
    const { metrics, maxDeltasPerMessage } = this.#deps;
    const count = update.deltas.length;
    metrics.deltaUpdatesReceived.inc();
    metrics.deltasReceived.inc(count);
    this.#deps.series.deltasReceived.inc(count);
    if (!this.#deps.accepting()) {
      // Nothing changes once the server is stopping: its last snapshot follows.
      this.#failure = new ConnectError(
        "the server is shutting down; the update was not applied",
        Code.Unavailable,
      );
      return;
    }
    let result: UpdateResult;
    try {
      if (count > maxDeltasPerMessage) {
        throw new ConnectError(
          `delta_update.deltas: ${count} deltas, more than the limit of ${maxDeltasPerMessage} per message; send them in several DeltaUpdates`,
          Code.ResourceExhausted,
        );
      }
      result = await this.#deps.store.applyUpdate(update);
    } catch (error) {
      const status = error instanceof ConnectError ? error : storeErrorToStatus(error);
      if (status.code === Code.Unavailable) {
        // Valid, but the store could not take it: not the client's fault, and
        // not a rejection. The stream ends so the client retries it.
        metrics.storeUnavailable.labels("apply").inc();
      } else {
        metrics.deltaUpdatesRejected.labels(codeLabel(status.code)).inc();
        this.#deps.series.deltaUpdatesRejected.inc();
        metrics.rejectedDeltas.count += count;
      }
      this.#failure = status;
      return;
    }
    this.#publish(update.seed, result.buckets);
    metrics.aggregationLatency.observe((performance.now() - received) / 1000);
  }

  /**
   * Merges a client's view (learning mode) as the store's `applyOffer`
   * does, under an update's rules: refused while the server stops, over
   * `maxDeltasPerMessage` buckets or when the store refuses it (each ends
   * the stream); the buckets it raised are broadcast. An offer the store
   * turns away — learning is over, or its seed is outside the live range —
   * is counted by the store, and the stream goes on.
   */
  async #offer(offer: StateOfferInput): Promise<void> {
    const { metrics, maxDeltasPerMessage } = this.#deps;
    if (!this.#deps.accepting()) {
      this.#failure = new ConnectError(
        "the server is shutting down; the offer was not applied",
        Code.Unavailable,
      );
      return;
    }
    let result: OfferResult;
    try {
      const count = offer.buckets.length;
      if (count > maxDeltasPerMessage) {
        throw new ConnectError(
          `state_offer.buckets: ${count} buckets, more than the limit of ${maxDeltasPerMessage} per message (maxDeltasPerMessage); send them in several StateOffers`,
          Code.ResourceExhausted,
        );
      }
      result = await this.#deps.store.applyOffer(offer);
    } catch (error) {
      const status =
        error instanceof ConnectError ? error : storeErrorToStatus(error, "state_offer");
      if (status.code === Code.Unavailable) metrics.storeUnavailable.labels("offer").inc();
      else metrics.rejectedOffers.count++;
      this.#failure = status;
      return;
    }
    this.#publish(offer.seed, result.buckets);
  }

  /** Hands what the store changed to the hub, unless the store's change feed does. */
  #publish(seed: bigint, buckets: OfferResult["buckets"]): void {
    if (this.#deps.publishApplied && buckets.length > 0) {
      this.#deps.hub.publish(this.#deps.namespace, seed, buckets);
    }
  }
}
