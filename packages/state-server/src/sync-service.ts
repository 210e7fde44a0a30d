import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { Hub } from "@fair/state-broadcast";
import {
  DECAY_RATE_HEADER,
  EPOCH_HEADER,
  NAMESPACE_HEADER,
  StateService,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import type { Store } from "@fair/state-store";
import { systemTimers, type Timers } from "@fair/timers";
import { admissionKey, type SyncAdmission } from "./admission.js";
import { type ServerLogger, silentLogger } from "./logger.js";
import type { SyncMetrics } from "./metrics.js";
import type { NamespaceSeries } from "./namespace-metrics.js";
import { RefusalLog } from "./refusal-log.js";
import { RequestRate } from "./request-rate.js";
import { bucketsPerPart, connectBinary, connectJson, type SyncEncoding } from "./responses.js";
import type { SyncRequestInput } from "./sync-request-decoder.js";
import { SyncStream } from "./sync-stream.js";
import { codeLabel } from "./to-status.js";

/** What the `Sync` service is built from. */
export interface SyncServiceOptions {
  readonly store: Store;
  readonly hub: Hub;
  readonly metrics: SyncMetrics;
  /**
   * Whether a stream publishes the buckets its update changed to the hub.
   * Default true. False for a store with a change feed, which hands every
   * change to the hub itself (in the order its shared view took them).
   */
  readonly publishApplied?: boolean;
  /** Sent in `fair-state-window-ms`, so clients can check they agree. */
  readonly windowMs: number;
  /** Sent in `fair-state-decay-rate`, so clients can check they agree. */
  readonly decayRatePerSecond: number;
  readonly maxDeltasPerMessage: number;
  readonly maxMessageBytes: number;
  /** Most Sync streams open at once; more are refused with RESOURCE_EXHAUSTED. Default: no limit. */
  readonly maxStreams?: number;
  /** Most requests per second on one stream; more end it with RESOURCE_EXHAUSTED. Default: no limit. */
  readonly maxRequestsPerSecond?: number;
  /** The clock for rate limits and stalls, in ms. Default `Date.now`. */
  readonly now?: () => number;
  /** Timers for the stall sweep. Default `systemTimers`. */
  readonly timers?: Timers;
  /**
   * How long a stream's transport may leave a message untaken (a broadcast
   * or a full-state part) before the stream is cut off as a slow consumer.
   * Default 10 000, the hub's `maxStallMs`.
   */
  readonly maxStallMs?: number;
  /**
   * Where streams are logged: opened and closed at debug (peer, namespace,
   * stream id), refused or ended for the client's fault at warn with the
   * reason, rate-limited ({@link RefusalLog}). Tokens never appear: the
   * reasons are the statuses' messages, which do not carry them. Default:
   * nowhere.
   */
  readonly logger?: ServerLogger;
}

/** Codes that end a stream for something its client did or asked: logged at warn. */
const refusalCodes: ReadonlySet<Code> = new Set([
  Code.InvalidArgument,
  Code.ResourceExhausted,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.FailedPrecondition,
  Code.OutOfRange,
]);

/** Namespaces are map keys and metric-free labels; bound them so a header cannot be a memory sink. */
const MAX_NAMESPACE_LENGTH = 256;

/** The default of {@link SyncServiceOptions.maxStallMs}: the hub's. */
const DEFAULT_MAX_STALL_MS = 10_000;

/** The status message of a stream ended because the store's epoch changed under it. */
export const EPOCH_CHANGED_MESSAGE = "state epoch changed; reconnect";

/** The status that ends such a stream: UNAVAILABLE, which clients reconnect on. */
function epochChanged(): ConnectError {
  return new ConnectError(EPOCH_CHANGED_MESSAGE, Code.Unavailable);
}

/**
 * The `Sync` streams of one server, whatever carries them: the limits and
 * metrics they share, and one {@link SyncStream} per client. The Connect
 * routes ({@link registerSyncService}) and the gRPC path
 * (`grpc-sync-handler.ts`) both serve their streams here.
 *
 * One sweep, every `maxStallMs / 4` while any stream is open, cuts off each
 * stream whose transport has left a message (a broadcast or a full-state
 * part) untaken for more than `maxStallMs`; a stream only notes when it
 * hands a message over, so the hot path pays one clock read per message.
 */
export class SyncService {
  readonly #options: SyncServiceOptions;
  readonly #maxStallMs: number;
  readonly #now: () => number;
  readonly #timers: Timers;
  /** Every stream being served, for the stall sweep. */
  readonly #live = new Set<SyncStream<unknown>>();
  /** The stall sweep's interval while a stream is open; `undefined` otherwise. */
  #sweep: unknown;
  #streams = 0;
  /** Streams ever opened: the next one's id, in the logs. */
  #opened = 0;
  #closed = false;
  readonly #logger: ServerLogger;
  readonly #refusals: RefusalLog;
  /** The server's rules, the same on every stream, so clients can check they agree. */
  readonly #rules: Readonly<Record<string, string>>;
  /** Largest request message accepted, in bytes. */
  readonly maxMessageBytes: number;

  constructor(options: SyncServiceOptions) {
    this.#options = options;
    this.maxMessageBytes = options.maxMessageBytes;
    this.#maxStallMs = options.maxStallMs ?? DEFAULT_MAX_STALL_MS;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? systemTimers;
    this.#logger = options.logger ?? silentLogger;
    this.#refusals = new RefusalLog(this.#logger, this.#now);
    this.#rules = Object.freeze({
      [WINDOW_MS_HEADER]: String(options.windowMs),
      [DECAY_RATE_HEADER]: String(options.decayRatePerSecond),
    });
  }

  /**
   * The response headers of a stream opening now: the server's window and λ,
   * and `fair-state-epoch` with the store's current epoch when it has one
   * (none without the capability, or before a remote store knows it). Read
   * once per stream, as it opens, and handed to {@link SyncService.serve}.
   */
  responseHeaders(): Readonly<Record<string, string>> {
    const epoch = this.#epoch();
    return epoch === undefined ? this.#rules : { ...this.#rules, [EPOCH_HEADER]: epoch };
  }

  /**
   * Ends every open stream with UNAVAILABLE ("state epoch changed;
   * reconnect"), so each client reconnects and sees the new epoch in its
   * headers; returns how many. A stream that opens meanwhile, its headers
   * read before the change, is ended by {@link SyncService.serve} as it starts.
   */
  endEveryStream(): number {
    const count = this.#live.size;
    for (const stream of this.#live) stream.end(epochChanged());
    return count;
  }

  #epoch(): string | undefined {
    return this.#options.store.epochs?.current?.id;
  }

  /**
   * Serves one admitted stream (see `admission.ts`): applies what `requests`
   * carry and yields what the client is sent, encoded by `encoding`. Returns
   * when the client ends its side; throws the `ConnectError` that ends the
   * stream otherwise — at once if the admission refused it, or if `headers`
   * (what {@link SyncService.responseHeaders} gave as the stream opened)
   * announce an epoch that is no longer the store's.
   */
  async *serve<Out>(
    requests: AsyncIterable<SyncRequestInput>,
    admission: SyncAdmission,
    encoding: SyncEncoding<Out>,
    signal: AbortSignal,
    headers: Readonly<Record<string, string>>,
  ): AsyncGenerator<Out> {
    const streamId = ++this.#opened;
    const who = { streamId, peer: admission.peer, namespace: admission.namespace };
    if (admission.refusal) {
      this.#refused(who, admission.refusal);
      throw admission.refusal;
    }
    const options = this.#options;
    const { metrics } = options;
    const openedAt = this.#now();
    let code = "ok";
    let series: NamespaceSeries | undefined;
    this.#logger.debug?.(who, "Sync stream opened");
    this.#checkClientRules(who, admission);
    metrics.connectedClients.inc();
    this.#streams++;
    try {
      const limit = options.maxStreams ?? Number.POSITIVE_INFINITY;
      if (this.#streams > limit) {
        metrics.streamsRefused.labels("max_streams").inc();
        throw new ConnectError(
          `the server holds its limit of ${limit} streams (maxStreams); retry with backoff`,
          Code.ResourceExhausted,
        );
      }
      const name = admission.namespace;
      if (name.length > MAX_NAMESPACE_LENGTH) {
        throw new ConnectError(
          `${NAMESPACE_HEADER}: ${name.length} characters, more than the limit of ${MAX_NAMESPACE_LENGTH}`,
          Code.InvalidArgument,
        );
      }
      // The epoch changed between reading the headers and now: this stream
      // missed the change that ended the others, so end it the same way.
      if (headers[EPOCH_HEADER] !== this.#epoch()) throw epochChanged();
      series = metrics.namespaces.series(name);
      series.streams.inc();
      const stream = new SyncStream(
        {
          namespace: name,
          store: options.store.namespace(name),
          hub: options.hub,
          metrics,
          series,
          publishApplied: options.publishApplied ?? true,
          maxDeltasPerMessage: options.maxDeltasPerMessage,
          bucketsPerPart: bucketsPerPart(options.maxMessageBytes, encoding),
          rate: new RequestRate(
            options.maxRequestsPerSecond ?? Number.POSITIVE_INFINITY,
            this.#now,
          ),
          encoding,
          onCutOff: admission.resetIfStuck,
          accepting: () => !this.#closed,
          now: this.#now,
        },
        signal,
      );
      this.#watch(stream);
      try {
        yield* stream.run(requests);
      } finally {
        this.#unwatch(stream);
      }
    } catch (error) {
      const status = ConnectError.from(error);
      code = codeLabel(status.code);
      this.#refused(who, status);
      throw status;
    } finally {
      this.#streams--;
      metrics.connectedClients.dec();
      series?.streams.dec();
      metrics.streamsClosed.labels(code).inc();
      this.#logger.debug?.(
        { ...who, code, durationMs: this.#now() - openedAt },
        "Sync stream closed",
      );
    }
  }

  /**
   * Warns (rate-limited, with the refusals) when the client says it runs
   * with another window or λ than this server: its tracker would hash into
   * windows the server does not have, or decay differently. The stream goes
   * on; the client reads the server's values in the response headers and
   * reports the mismatch itself (a window mismatch closes it).
   */
  #checkClientRules(who: object, admission: SyncAdmission): void {
    const { windowMs, decayRatePerSecond } = this.#options;
    const { clientWindowMs, clientDecayRate } = admission;
    const windowDiffers = clientWindowMs !== null && Number(clientWindowMs) !== windowMs;
    const decayDiffers = clientDecayRate !== null && Number(clientDecayRate) !== decayRatePerSecond;
    if (!windowDiffers && !decayDiffers) return;
    const problems = [
      ...(windowDiffers
        ? [`the client's windowMs is ${clientWindowMs}, the server's ${windowMs}`]
        : []),
      ...(decayDiffers
        ? [`the client's decay rate is ${clientDecayRate}/s, the server's ${decayRatePerSecond}/s`]
        : []),
    ];
    this.#refusals.warn(
      {
        ...who,
        code: "config_mismatch",
        clientWindowMs,
        serverWindowMs: windowMs,
        clientDecayRatePerSecond: clientDecayRate,
        serverDecayRatePerSecond: decayRatePerSecond,
      },
      `Sync client configured unlike the server: ${problems.join("; ")} (the server's values are authoritative: set the trackers' rotationFrequencyMs and lambda to them)`,
    );
  }

  /** Logs a stream refused or ended for its client's fault; other ends are only the debug line. */
  #refused(who: object, status: ConnectError): void {
    if (!refusalCodes.has(status.code)) return;
    this.#refusals.warn(
      { ...who, code: codeLabel(status.code), reason: status.rawMessage },
      "Sync stream refused",
    );
  }

  /**
   * Stops applying: from now on every stream's next update ends it with
   * UNAVAILABLE instead of reaching the store, so a server shutting down
   * can take its last snapshot knowing nothing changes after it. Stops the
   * stall sweep for good, so the service leaves no timer behind.
   * Idempotent.
   */
  close(): void {
    this.#closed = true;
    this.#stopSweep();
    this.#refusals.flush();
  }

  #watch(stream: SyncStream<unknown>): void {
    this.#live.add(stream);
    if (this.#sweep !== undefined || this.#closed || !Number.isFinite(this.#maxStallMs)) return;
    this.#sweep = this.#timers.setInterval(this.#checkStalls, Math.max(1, this.#maxStallMs / 4));
  }

  #unwatch(stream: SyncStream<unknown>): void {
    this.#live.delete(stream);
    if (this.#live.size === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    if (this.#sweep === undefined) return;
    this.#timers.clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  // A Set iteration skips members deleted on the way, so a stream that ends
  // during the sweep is passed over.
  readonly #checkStalls = (): void => {
    const nowMs = this.#now();
    for (const stream of this.#live) stream.checkStall(nowMs, this.#maxStallMs);
  };
}

/**
 * Registers `fair.state.v1.StateService` on a Connect router, serving its
 * streams from `service`; each request's admission comes in its context
 * values (`admissionKey`), set by the server's request handler.
 */
export function registerSyncService(router: ConnectRouter, service: SyncService): void {
  router.service(StateService, {
    sync: (requests, context) => {
      const headers = service.responseHeaders();
      for (const [name, value] of Object.entries(headers)) {
        context.responseHeader.set(name, value);
      }
      // gRPC, gRPC-Web and Connect all say "json" in the content type of a JSON stream.
      const json = context.requestHeader.get("content-type")?.includes("json");
      return service.serve(
        requests,
        context.values.get(admissionKey),
        json ? connectJson : connectBinary,
        context.signal,
        headers,
      );
    },
  });
}
