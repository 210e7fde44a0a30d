import { create } from "@bufbuild/protobuf";
import { type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  DECAY_RATE_HEADER,
  EPOCH_HEADER,
  NAMESPACE_HEADER,
  StateService,
  type SyncRequest,
  SyncRequestSchema,
  type SyncResponse,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import { Backoff } from "./backoff.js";
import { StateClientError } from "./errors.js";
import { FullStateRequests } from "./full-state-requests.js";
import { KeepaliveSession } from "./keepalive-session.js";
import { offerMessages } from "./offers.js";
import { resolveOptions, type StateClientOptions } from "./options.js";
import { Outbox } from "./outbox.js";
import { isSendable, PendingDeltas } from "./pending-deltas.js";
import { type EpochChange, ServerEpoch } from "./server-epoch.js";
import type {
  BucketDelta,
  BucketValue,
  FullStateRequestOptions,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "./state-link.js";
import { StateRequestLedger } from "./state-request-ledger.js";
import { StateClientCounters, type StateClientStats } from "./stats.js";

/** The client's events and what their listeners receive. */
export interface StateClientEvents {
  /** A stream is open and the server answered. */
  connected: () => void;
  /** The stream was lost (or refused); the client reconnects after a backoff unless closed. */
  disconnected: (error: StateClientError | undefined) => void;
  /** Something went wrong that the caller may want to log: a stream error, a config mismatch, a listener that threw. */
  error: (error: StateClientError) => void;
  /**
   * A (re)connected stream announced a state epoch other than the last one confirmed: the
   * server may have lost what it held. Emitted once the listeners' `onEpochChange` have
   * made their offers, before anything of the stream is delivered.
   */
  epochChange: (epoch: string, previous: string) => void;
}

/**
 * A FAIR instance's link to the State Service: one long-lived gRPC `Sync`
 * stream over HTTP/2 that carries this instance's bucket adjustments out and
 * the fleet's aggregated buckets back. Nothing on the caller's path blocks
 * or throws: adjustments coalesce per bucket and go out every
 * `flushIntervalMs`; while the server is unreachable they wait (bounded),
 * the client reconnects with backoff, and on reconnecting it re-requests the
 * seeds it holds. When a reconnected stream shows a new state epoch, the
 * listeners offer what they hold first (learning mode; see
 * {@link StateLinkListener.onEpochChange}).
 *
 * @example
 * ```ts
 * const client = new StateClient({
 *   baseUrl: "http://fair-state-server:50051",
 *   onStateUpdate: (seed, buckets) => tracker.overwrite(seed, buckets),
 * });
 * client.connect();
 * client.sendDeltaUpdate(seed, [{ rowId: 0, colId: 42, deltaProb: 0.04, lastUpdateTimeMs: Date.now() }]);
 * await client.close();
 * ```
 */
export class StateClient implements StateLink {
  readonly #options: StateClientOptions;
  readonly #client: Client<typeof StateService>;
  readonly #sessions: KeepaliveSession | undefined;
  readonly #pending: PendingDeltas;
  readonly #requests: FullStateRequests;
  readonly #backoff: Backoff;
  readonly #counters = new StateClientCounters();
  readonly #listeners = new Set<StateLinkListener>();
  readonly #events: { [E in keyof StateClientEvents]: Set<StateClientEvents[E]> } = {
    connected: new Set(),
    disconnected: new Set(),
    error: new Set(),
    epochChange: new Set(),
  };
  readonly #epoch = new ServerEpoch();
  /** Seeds asked for with requestFullState, asked for again after every reconnect. */
  readonly #heldSeeds = new Set<bigint>();
  #status: LinkStatus = "connecting";
  #running: Promise<void> | undefined;
  #closed = false;
  #outbox: Outbox | undefined;
  /** The StateRequests the current stream has sent, to tell stale replies after an epoch change. */
  #sentRequests: StateRequestLedger | undefined;
  /** True while listeners handle an epoch change: the one time `offerState` sends. */
  #offering = false;
  #streamAbort: AbortController | undefined;
  #answered = false;
  #flushTimer: unknown;
  #sleep: { timer: unknown; wake: () => void } | undefined;

  /** @throws StateClientError `invalid_option` naming the first bad option. */
  constructor(options: Partial<StateClientOptions>) {
    this.#options = resolveOptions(options);
    const { baseUrl, transport, keepaliveIntervalMs, keepaliveTimeoutMs, tls } = this.#options;
    if (transport === undefined) {
      // Our own connection, so keepalive PINGs notice a dead server within
      // seconds and close() can release the socket.
      const sessions = new KeepaliveSession(
        baseUrl,
        keepaliveIntervalMs,
        keepaliveTimeoutMs,
        tls && { ...tls },
      );
      this.#sessions = sessions;
      this.#client = createClient(
        StateService,
        createGrpcTransport({ baseUrl, sessionManager: sessions }),
      );
    } else {
      this.#client = createClient(StateService, transport);
    }
    this.#pending = new PendingDeltas(
      this.#options.decayRatePerSecond,
      this.#options.maxPendingBuckets,
    );
    this.#requests = new FullStateRequests(this.#options.timers);
    this.#backoff = new Backoff(
      this.#options.initialBackoffMs,
      this.#options.maxBackoffMs,
      this.#options.random,
    );
  }

  /** `connecting`, `connected`, `disconnected` (retrying) or `closed`. */
  /** The seed window this client is configured for (`windowMs`), as the `StateLink` contract asks. */
  get windowMs(): number {
    return this.#options.windowMs;
  }

  /** The decay rate this client is configured for (`decayRatePerSecond`). */
  get decayRatePerSecond(): number {
    return this.#options.decayRatePerSecond;
  }

  get status(): LinkStatus {
    return this.#status;
  }

  /** Opens the stream and keeps it open, reconnecting as needed, until {@link StateClient.close}. Idempotent. */
  connect(): void {
    if (this.#closed || this.#running) return;
    this.#running = this.#run();
  }

  /**
   * Queues adjustments for `seed`. Never blocks and never throws: invalid
   * deltas, deltas past the pending bound and deltas after `close()` are
   * dropped and counted in {@link StateClient.stats}.
   */
  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void {
    const counters = this.#counters;
    if (this.#closed || typeof seed !== "bigint" || seed < 0n) {
      counters.drop(this.#closed ? "closed" : "invalid", deltas.length);
      return;
    }
    for (const delta of deltas) {
      const { rowId, colId, deltaProb, lastUpdateTimeMs } = delta;
      if (!isSendable(rowId, colId, lastUpdateTimeMs) || !(deltaProb >= -1 && deltaProb <= 1)) {
        counters.drop("invalid", 1);
      } else if (this.#pending.add(seed, rowId, colId, deltaProb, lastUpdateTimeMs)) {
        counters.deltasQueued++;
      } else {
        counters.drop("overflow", 1);
      }
    }
    this.#scheduleFlush();
  }

  /**
   * Every non-default bucket of `seed`, as the server holds it. The seed is
   * asked for again after every reconnect, and the reply is also delivered
   * to `onStateUpdate` and listeners.
   *
   * @throws StateClientError `timeout`, `aborted` or `closed`.
   */
  requestFullState(
    seed: bigint,
    options: FullStateRequestOptions = {},
  ): Promise<readonly BucketValue[]> {
    if (this.#closed) {
      return Promise.reject(
        new StateClientError("closed", `full state for seed ${seed}: the client is closed`),
      );
    }
    this.#heldSeeds.add(seed);
    const { promise, first } = this.#requests.wait(
      seed,
      options.timeoutMs ?? this.#options.requestTimeoutMs,
      options.signal,
    );
    // A stream that is open (or opening) takes it now; one that fails before
    // answering is replaced, and the next stream asks for every waiting seed.
    // During an epoch change it waits for the offers: the requests repeated
    // after them include every waiting seed.
    if (first && !this.#offering) this.#requestState(seed);
    return promise;
  }

  /**
   * Offers this instance's view of `seed` — each bucket's value as of its own time — for
   * the server to merge by maximum (learning mode). It is sent only from within a listener's
   * `onEpochChange` (or an `epochChange` event listener), as `StateOffer` messages of at most
   * `maxDeltasPerMessage` buckets, before the client asks again for the seeds it holds.
   * Called at any other time it sends nothing: the server wants offers only from a client
   * that has just found its new epoch, and the client could not then tell which full-state
   * replies predate them. A bucket this client still holds adjustments for is offered net of
   * them (they are in the view already, and follow as deltas), so each outcome counts once.
   * Never blocks and never throws: unusable buckets, and offers made at another time, are
   * dropped and counted (`stats().offerBucketsDropped`).
   */
  offerState(seed: bigint, buckets: readonly BucketValue[]): void {
    const outbox = this.#outbox;
    if (!this.#offering || this.#closed || outbox === undefined) {
      this.#counters.dropOffered("not_asked", buckets.length);
      return;
    }
    const { maxDeltasPerMessage, decayRatePerSecond } = this.#options;
    const { messages, invalid } = offerMessages(
      seed,
      buckets,
      maxDeltasPerMessage,
      this.#pending,
      decayRatePerSecond / 1000,
    );
    this.#counters.dropOffered("invalid", invalid);
    for (const message of messages) outbox.push(message);
  }

  /** Adds a listener for updates, status and epoch changes; returns the function that removes it. */
  subscribe(listener: StateLinkListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Adds an event listener; returns the function that removes it. */
  on<E extends keyof StateClientEvents>(event: E, listener: StateClientEvents[E]): () => void {
    this.#events[event].add(listener);
    return () => this.#events[event].delete(listener);
  }

  /** Status and counters, for metrics and logs. */
  stats(): StateClientStats {
    return this.#counters.snapshot(this.#status, this.#pending.size, this.#epoch.current);
  }

  /**
   * Sends what is pending if connected, ends the stream (waiting up to
   * `requestTimeoutMs` for the server to finish it), rejects waiting
   * full-state requests, and releases every timer and socket. Adjustments
   * still unsent are dropped and counted. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return this.#running;
    this.#closed = true;
    this.#cancelFlush();
    if (this.#status === "connected") this.#flush();
    this.#outbox?.end();
    this.#requests.rejectAll(new StateClientError("closed", "the client was closed"));
    this.#sleep?.wake();
    const ended = this.#running ?? Promise.resolve();
    const timer = this.#options.timers.setTimeout(
      () => this.#streamAbort?.abort(),
      this.#options.requestTimeoutMs,
    );
    await ended;
    this.#options.timers.clearTimeout(timer);
    this.#counters.drop("closed", this.#pending.clear());
    this.#sessions?.close();
    this.#setStatus("closed");
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#answered = false;
      let failure: StateClientError | undefined;
      try {
        await this.#stream();
      } catch (error) {
        failure = new StateClientError(
          "stream_error",
          `stream to ${this.#options.baseUrl || "the server"} failed: ${ConnectError.from(error).message}`,
          error,
        );
      }
      this.#requests.onDisconnect();
      // Offers not confirmed by the server go again to the next stream of that epoch.
      this.#epoch.abandon();
      for (const message of this.#outbox?.remaining() ?? []) this.#requeue(message);
      this.#outbox = undefined;
      this.#sentRequests = undefined;
      if (this.#closed) break;
      // Adjustments wait through any outage; only seeds no longer live go.
      this.#dropDeadSeeds();
      failure ??= new StateClientError("stream_error", "the server ended the stream");
      this.#counters.lastError = failure;
      this.#setStatus("disconnected");
      this.#emit("disconnected", failure);
      this.#emit("error", failure);
      await this.#wait(this.#backoff.next());
      if (!this.#closed) this.#counters.reconnects++;
    }
  }

  /** One stream, from open to end. Resolves when the server ends it; rejects on error. */
  async #stream(): Promise<void> {
    if (this.#status !== "connecting") this.#setStatus("connecting");
    const abort = new AbortController();
    this.#streamAbort = abort;
    const outbox = new Outbox((message) => this.#counters.onSent(message));
    this.#outbox = outbox;
    this.#sentRequests = new StateRequestLedger();
    // Ask again for every seed we hold or are waiting on; with none, ask for
    // the current window so the server answers (and sends its headers) now.
    const seeds = new Set([...this.#liveHeldSeeds(), ...this.#requests.seeds()]);
    if (seeds.size === 0) seeds.add(this.#currentSeed());
    for (const seed of seeds) this.#requestState(seed);
    const { namespace, authToken } = this.#options;
    const headers: Record<string, string> = {};
    if (namespace !== "") headers[NAMESPACE_HEADER] = namespace;
    if (authToken !== undefined) headers["authorization"] = `Bearer ${authToken}`;
    // Our window and λ, so a server that disagrees can say so in its own log.
    headers[WINDOW_MS_HEADER] = String(this.#options.windowMs);
    headers[DECAY_RATE_HEADER] = String(this.#options.decayRatePerSecond);
    let header: Headers | undefined;
    const responses = this.#client.sync(outbox.messages(), {
      headers,
      signal: abort.signal,
      onHeader: (h) => {
        header = h;
      },
    });
    try {
      for await (const response of responses) {
        // Connected means the server answered: headers alone come with
        // trailers-only refusals too, and must not reset the backoff.
        if (!this.#answered) this.#onAnswered(header);
        this.#onResponse(response);
      }
    } finally {
      // Refused before its first message (a seed of another window is, at
      // once), the stream still brought the server's rules: check them, or
      // a window mismatch would only ever show as a reconnect loop.
      if (!this.#answered && header !== undefined) this.#checkServerConfig(header);
    }
  }

  #onAnswered(header: Headers | undefined): void {
    this.#answered = true;
    this.#backoff.reset();
    this.#setStatus("connected");
    this.#emit("connected");
    if (header) this.#checkServerConfig(header);
    if (this.#closed) return;
    const change = this.#epoch.observe(header?.get(EPOCH_HEADER) ?? null);
    if (change !== undefined) this.#onEpochChange(change);
    // What waited goes after the offers, which were sent net of it: each outcome counts once.
    if (this.#pending.size > 0) this.#flush();
  }

  /**
   * A new epoch, found on the first message of a stream and before it is delivered: the
   * replies to every request sent so far describe the state before the offers and will be
   * dropped; listeners offer what they hold (sent at once, in `offerState`); then every
   * seed held, waited on or just made stale is asked for again.
   */
  #onEpochChange({ epoch, previous }: EpochChange): void {
    const ledger = this.#sentRequests;
    if (ledger === undefined) return;
    this.#counters.epochChanges++;
    const stale = ledger.markSentAsStale();
    this.#offering = true;
    try {
      this.#deliver((listener) => listener.onEpochChange?.(epoch, previous));
      this.#emit("epochChange", epoch, previous);
    } finally {
      this.#offering = false;
    }
    if (this.#closed) return;
    const seeds = new Set([...stale, ...this.#liveHeldSeeds(), ...this.#requests.seeds()]);
    for (const seed of seeds) this.#requestState(seed);
  }

  #checkServerConfig(header: Headers): void {
    const problems: string[] = [];
    const windowMs = header.get(WINDOW_MS_HEADER);
    if (windowMs !== null && Number(windowMs) !== this.#options.windowMs) {
      problems.push(
        `the server's seed window is ${windowMs} ms, the client's windowMs is ${this.#options.windowMs}`,
      );
    }
    const serverDecayRate = header.get(DECAY_RATE_HEADER);
    if (serverDecayRate !== null && Number(serverDecayRate) !== this.#options.decayRatePerSecond) {
      problems.push(
        `the server's decay rate is ${serverDecayRate}/s, the client's decayRatePerSecond is ${this.#options.decayRatePerSecond}`,
      );
    }
    if (problems.length === 0) return;
    // Another window: every seed this client sends is refused. Closing ends
    // the reconnect loop that would follow; only λ may differ and go on.
    const windowDiffers = windowMs !== null && Number(windowMs) !== this.#options.windowMs;
    const refuse = this.#options.onConfigMismatch === "refuse" || windowDiffers;
    const error = new StateClientError(
      "config_mismatch",
      `${problems.join("; ")}: trackers and server must agree (set the tracker's rotation period and Lambda to the server's)${windowDiffers ? "; closing, as the server would refuse every seed" : refuse ? '; closing, as onConfigMismatch is "refuse"' : ""}`,
    );
    this.#counters.lastError = error;
    this.#emit("error", error);
    this.#deliver((listener) => listener.onConfigMismatch?.(error.message));
    if (refuse) {
      this.#pending.clear();
      void this.close();
    }
  }

  #onResponse(response: SyncResponse): void {
    const buckets: BucketValue[] = response.buckets.map((b) => ({
      rowId: Number(b.rowId),
      colId: Number(b.colId),
      prob: b.prob,
      lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
    }));
    this.#counters.updatesReceived += buckets.length;
    if (response.fullState) {
      const { seed, fullStateLast } = response;
      if (this.#sentRequests?.onPart(seed, fullStateLast)) {
        // It describes the state before this client's offers; the repeated request's reply follows.
        this.#counters.staleRepliesDropped++;
        return;
      }
      // The server answered a request sent after the offers: it has processed them.
      if (fullStateLast) this.#epoch.confirm();
      this.#requests.onPart(seed, buckets, fullStateLast);
    }
    this.#deliver((listener) =>
      listener.onStateUpdate?.(response.seed, buckets, response.fullState),
    );
    const onStateUpdate = this.#options.onStateUpdate;
    if (onStateUpdate) this.#guard(() => onStateUpdate(response.seed, buckets, response.fullState));
  }

  #scheduleFlush(): void {
    if (this.#pending.size >= this.#options.maxDeltasPerMessage) {
      // Large enough to send now; still off the caller's path.
      this.#cancelFlush();
      this.#flushTimer = this.#options.timers.setTimeout(() => this.#flushNow(), 0);
    } else if (this.#flushTimer === undefined && this.#pending.size > 0) {
      this.#flushTimer = this.#options.timers.setTimeout(
        () => this.#flushNow(),
        this.#options.flushIntervalMs,
      );
    }
  }

  #flushNow(): void {
    this.#flushTimer = undefined;
    this.#flush();
  }

  #cancelFlush(): void {
    if (this.#flushTimer !== undefined) this.#options.timers.clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  /** Hands what is pending to the stream; while not connected it stays pending. */
  #flush(): void {
    const outbox = this.#outbox;
    if (this.#status !== "connected" || outbox === undefined) return;
    this.#dropDeadSeeds();
    const { messages } = this.#pending.drain(this.#options.maxDeltasPerMessage);
    for (const value of messages)
      outbox.push(create(SyncRequestSchema, { request: { case: "deltaUpdate", value } }));
  }

  /** A message the transport never took goes back where it came from. */
  #requeue(message: SyncRequest): void {
    if (message.request.case !== "deltaUpdate") return;
    const { seed, deltas } = message.request.value;
    for (const d of deltas) {
      if (
        !this.#pending.add(
          seed,
          Number(d.rowId),
          Number(d.colId),
          d.deltaProb,
          Number(d.lastUpdateTimeMs),
        )
      ) {
        this.#counters.drop("overflow", 1);
      }
    }
  }

  /** Sends a StateRequest on the current stream, if there is one, and notes it. */
  #requestState(seed: bigint): void {
    const outbox = this.#outbox;
    if (outbox === undefined) return;
    outbox.push(stateRequest(seed));
    this.#sentRequests?.sent(seed);
  }

  #liveHeldSeeds(): Set<bigint> {
    const oldest = this.#oldestLiveSeed();
    for (const seed of this.#heldSeeds) if (seed < oldest) this.#heldSeeds.delete(seed);
    return this.#heldSeeds;
  }

  /** Pending adjustments for seeds no longer live are dropped and counted (`too_old`). */
  #dropDeadSeeds(): void {
    const dropped = this.#pending.dropSeedsBefore(this.#oldestLiveSeed());
    if (dropped > 0) this.#counters.drop("too_old", dropped);
  }

  /**
   * The oldest seed still live: two windows before the current one. A tracker holds the
   * current and next windows; older seeds are evicted by the server soon anyway.
   */
  #oldestLiveSeed(): bigint {
    return this.#currentSeed() - 2n * BigInt(this.#options.windowMs);
  }

  #currentSeed(): bigint {
    const { windowMs, now } = this.#options;
    return BigInt(Math.floor(now() / windowMs) * windowMs);
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#options.timers.clearTimeout(timer);
        this.#sleep = undefined;
        resolve();
      };
      const timer = this.#options.timers.setTimeout(wake, ms);
      this.#sleep = { timer, wake };
    });
  }

  #setStatus(status: LinkStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    this.#deliver((listener) => listener.onStatusChange?.(status));
  }

  #deliver(call: (listener: StateLinkListener) => void): void {
    for (const listener of this.#listeners) this.#guard(() => call(listener));
  }

  #emit<E extends keyof StateClientEvents>(
    event: E,
    ...args: Parameters<StateClientEvents[E]>
  ): void {
    for (const listener of this.#events[event]) {
      (listener as (...a: Parameters<StateClientEvents[E]>) => void)(...args);
    }
  }

  /** A listener that throws must not break the stream: report it and go on. */
  #guard(call: () => void): void {
    try {
      call();
    } catch (error) {
      const wrapped = new StateClientError(
        "stream_error",
        `a state listener threw: ${String(error)}`,
        error,
      );
      this.#counters.lastError = wrapped;
      this.#emit("error", wrapped);
    }
  }
}

function stateRequest(seed: bigint): SyncRequest {
  return create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } });
}
