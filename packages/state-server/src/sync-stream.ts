import { Code, ConnectError } from "@connectrpc/connect";
import type { Batch, Hub, Subscription } from "@fair/state-broadcast";
import type { DeltaUpdateInput, StoreNamespace, UpdateResult } from "@fair/state-store";
import type { SyncMetrics } from "./metrics.js";
import type { RequestRate } from "./request-rate.js";
import type { SyncEncoding } from "./responses.js";
import type { SyncRequestInput } from "./sync-request-decoder.js";
import { closeReasonToStatus, codeLabel, storeErrorToStatus } from "./to-status.js";

/** Most buckets one coalesced broadcast carries: about 100 KiB on the wire. */
const COALESCE_MAX_BUCKETS = 4096;

/** What one stream needs from the server around it; `Out` is a message of its transport. */
export interface SyncStreamDeps<Out> {
  readonly namespace: string;
  readonly store: StoreNamespace;
  readonly hub: Hub;
  readonly metrics: SyncMetrics;
  /** Whether to publish applied buckets to the hub (false when the store's change feed does). */
  readonly publishApplied: boolean;
  readonly maxDeltasPerMessage: number;
  readonly bucketsPerPart: number;
  /** Admits each request, or refuses one over the stream's rate. */
  readonly rate: RequestRate;
  /** How broadcasts and full-state replies become messages. */
  readonly encoding: SyncEncoding<Out>;
  /** Called when the hub cuts this stream off as a slow consumer. */
  readonly onCutOff: () => void;
  /** Whether updates may still be applied: false once the server is stopping. */
  readonly accepting: () => boolean;
}

/**
 * One client's `Sync` stream. Two loops share it: the reader applies the
 * client's `DeltaUpdate`s and queues its `StateRequest`s; the writer sends
 * full-state replies to this client and the hub's broadcasts, pulling from
 * the hub only when the transport takes a message — so a slow client backs
 * up in the hub (which keeps the latest value per key for it), never here.
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
    try {
      for (;;) {
        if (this.#failure) throw this.#failure;
        const seed = this.#stateRequests.shift();
        if (seed !== undefined) {
          yield* this.#fullState(seed);
          continue;
        }
        if (this.#readerDone) return;
        const batch = this.#takeReady();
        if (batch) {
          yield this.#coalesced(batch);
          continue;
        }
        const reason = this.#subscription.closeReason;
        if (reason) {
          const status = closeReasonToStatus(reason);
          if (status) throw status;
          return;
        }
        await this.#event();
      }
    } finally {
      this.#subscription.close();
    }
  }

  /**
   * Answers a StateRequest. Broadcasts already queued for this stream are
   * older than the snapshot, so they go first; anything published after it
   * is newer and follows the reply. Either way the client never overwrites a
   * newer value with an older one.
   */
  async *#fullState(seed: bigint): AsyncGenerator<Out> {
    const older: Batch[] = [];
    for (let batch = this.#takeReady(); batch; batch = this.#takeReady()) older.push(batch);
    let buckets: Awaited<ReturnType<StoreNamespace["getSeed"]>>;
    try {
      buckets = await this.#deps.store.getSeed(seed);
    } catch (error) {
      // A remote store that cannot answer: UNAVAILABLE, so the client asks again.
      const status = storeErrorToStatus(error, "state_request");
      if (status.code === Code.Unavailable)
        this.#deps.metrics.storeUnavailable.labels("get_seed").inc();
      throw status;
    }
    const { encoding, bucketsPerPart, metrics } = this.#deps;
    for (const batch of older) yield encoding.broadcast(batch);
    // An unknown seed gets one empty part, so the requester knows the reply came.
    let start = 0;
    do {
      const end = Math.min(buckets.length, start + bucketsPerPart);
      metrics.fullStateBucketsSent.inc(end - start);
      yield encoding.fullStatePart(seed, buckets.slice(start, end), end === buckets.length);
      start = end;
    } while (start < buckets.length);
  }

  /**
   * `batch` and the batches of the same seed that are ready right behind it,
   * as one message, up to {@link COALESCE_MAX_BUCKETS} buckets; the first
   * batch of another seed waits for the next turn.
   */
  #coalesced(batch: Batch): Out {
    const { coalesce } = this.#deps.encoding;
    if (coalesce === undefined) return this.#deps.encoding.broadcast(batch);
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
    try {
      for await (const message of requests) {
        if (!this.#deps.rate.take()) {
          this.#deps.metrics.streamsRefused.labels("max_requests_per_second").inc();
          throw new ConnectError(
            "more requests per second on this stream than maxRequestsPerSecond allows; send fewer, larger DeltaUpdates",
            Code.ResourceExhausted,
          );
        }
        const { request } = message;
        if (request.case === "deltaUpdate") {
          await this.#apply(request.value);
        } else if (request.case === "stateRequest") {
          this.#deps.metrics.fullStateRequests.inc();
          this.#stateRequests.push(request.value.seed);
          this.#notify();
        }
        // A message with neither case set carries nothing: ignore it.
        if (this.#failure) return;
      }
      this.#readerDone = true;
    } catch (error) {
      this.#failure ??= ConnectError.from(error);
    } finally {
      this.#notify();
    }
  }

  async #apply(update: DeltaUpdateInput): Promise<void> {
    const received = performance.now();
    const { metrics, maxDeltasPerMessage } = this.#deps;
    const count = update.deltas.length;
    metrics.deltaUpdatesReceived.inc();
    metrics.deltasReceived.inc(count);
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
        metrics.rejectedDeltas.count += count;
      }
      this.#failure = status;
      return;
    }
    if (this.#deps.publishApplied && result.buckets.length > 0) {
      this.#deps.hub.publish(this.#deps.namespace, update.seed, result.buckets);
    }
    metrics.aggregationLatency.observe((performance.now() - received) / 1000);
  }
}
