import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { Hub } from "@fair/state-broadcast";
import {
  DECAY_RATE_HEADER,
  NAMESPACE_HEADER,
  StateService,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import type { Store } from "@fair/state-store";
import { admissionKey, type SyncAdmission } from "./admission.js";
import type { SyncMetrics } from "./metrics.js";
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
  /** The clock for rate limits, in ms. Default `Date.now`. */
  readonly now?: () => number;
}

/** Namespaces are map keys and metric-free labels; bound them so a header cannot be a memory sink. */
const MAX_NAMESPACE_LENGTH = 256;

/**
 * The `Sync` streams of one server, whatever carries them: the limits and
 * metrics they share, and one {@link SyncStream} per client. The Connect
 * routes ({@link registerSyncService}) and the gRPC path
 * (`grpc-sync-handler.ts`) both serve their streams here.
 */
export class SyncService {
  readonly #options: SyncServiceOptions;
  readonly #bucketsPerPart: number;
  #streams = 0;
  #closed = false;
  /** The response headers of every stream: the server's rules, so clients can check they agree. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** Largest request message accepted, in bytes. */
  readonly maxMessageBytes: number;

  constructor(options: SyncServiceOptions) {
    this.#options = options;
    this.maxMessageBytes = options.maxMessageBytes;
    this.#bucketsPerPart = bucketsPerPart(options.maxMessageBytes);
    this.responseHeaders = {
      [WINDOW_MS_HEADER]: String(options.windowMs),
      [DECAY_RATE_HEADER]: String(options.decayRatePerSecond),
    };
  }

  /**
   * Serves one admitted stream (see `admission.ts`): applies what `requests`
   * carry and yields what the client is sent, encoded by `encoding`. Returns
   * when the client ends its side; throws the `ConnectError` that ends the
   * stream otherwise — at once if the admission refused it.
   */
  async *serve<Out>(
    requests: AsyncIterable<SyncRequestInput>,
    admission: SyncAdmission,
    encoding: SyncEncoding<Out>,
    signal: AbortSignal,
  ): AsyncGenerator<Out> {
    if (admission.refusal) throw admission.refusal;
    const options = this.#options;
    const { metrics } = options;
    let code = "ok";
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
      const stream = new SyncStream(
        {
          namespace: name,
          store: options.store.namespace(name),
          hub: options.hub,
          metrics,
          publishApplied: options.publishApplied ?? true,
          maxDeltasPerMessage: options.maxDeltasPerMessage,
          bucketsPerPart: this.#bucketsPerPart,
          rate: new RequestRate(
            options.maxRequestsPerSecond ?? Number.POSITIVE_INFINITY,
            options.now ?? Date.now,
          ),
          encoding,
          onCutOff: admission.resetIfStuck,
          accepting: () => !this.#closed,
        },
        signal,
      );
      yield* stream.run(requests);
    } catch (error) {
      const status = ConnectError.from(error);
      code = codeLabel(status.code);
      throw status;
    } finally {
      this.#streams--;
      metrics.connectedClients.dec();
      metrics.streamsClosed.labels(code).inc();
    }
  }

  /**
   * Stops applying: from now on every stream's next update ends it with
   * UNAVAILABLE instead of reaching the store, so a server shutting down
   * can take its last snapshot knowing nothing changes after it.
   * Idempotent.
   */
  close(): void {
    this.#closed = true;
  }
}

/**
 * Registers `fair.state.v1.StateService` on a Connect router, serving its
 * streams from `service`; each request's admission comes in its context
 * values (`admissionKey`), set by the server's request handler.
 */
export function registerSyncService(router: ConnectRouter, service: SyncService): void {
  router.service(StateService, {
    sync: (requests, context) => {
      for (const [name, value] of Object.entries(service.responseHeaders)) {
        context.responseHeader.set(name, value);
      }
      // gRPC, gRPC-Web and Connect all say "json" in the content type of a JSON stream.
      const json = context.requestHeader.get("content-type")?.includes("json");
      return service.serve(
        requests,
        context.values.get(admissionKey),
        json ? connectJson : connectBinary,
        context.signal,
      );
    },
  });
}
