import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Hub } from "@fair/state-broadcast";
import {
  DECAY_RATE_HEADER,
  NAMESPACE_HEADER,
  StateService,
  type SyncRequest,
  type SyncResponse,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import type { Store } from "@fair/state-store";
import type { SyncMetrics } from "./metrics.js";
import { RequestRate } from "./request-rate.js";
import {
  broadcastResponse,
  bucketsPerPart,
  encodedBroadcastResponse,
  encodedBroadcastsResponse,
} from "./responses.js";
import { SyncStream } from "./sync-stream.js";
import { codeLabel } from "./to-status.js";

/** What the `Sync` service is built from. */
export interface SyncServiceOptions {
  readonly store: Store;
  readonly hub: Hub;
  readonly metrics: SyncMetrics;
  /**
   * Whether a stream publishes the buckets its update changed to the hub.
   * Default true. False for a store that hands every change to the hub
   * itself (the Redis store, which orders its own changes with the other
   * replicas').
   */
  readonly publishApplied?: boolean;
  /** Sent in `fair-state-window-ms`, so clients can check they agree. */
  readonly windowMs: number;
  /** Sent in `fair-state-decay-rate`, so clients can check they agree. */
  readonly decayRate: number;
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
 * Registers `fair.state.v1.StateService` on a Connect router: one `Sync`
 * stream per FAIR instance, in the namespace its `fair-state-namespace`
 * header names (default empty).
 */
export function registerSyncService(router: ConnectRouter, options: SyncServiceOptions): void {
  const perPart = bucketsPerPart(options.maxMessageBytes);
  const open = { streams: 0 };
  router.service(StateService, {
    sync: (requests, context) => sync(requests, context, options, perPart, open),
  });
}

async function* sync(
  requests: AsyncIterable<SyncRequest>,
  context: HandlerContext,
  options: SyncServiceOptions,
  perPart: number,
  open: { streams: number },
): AsyncGenerator<SyncResponse> {
  const { metrics } = options;
  context.responseHeader.set(WINDOW_MS_HEADER, String(options.windowMs));
  context.responseHeader.set(DECAY_RATE_HEADER, String(options.decayRate));
  let code = "ok";
  metrics.connectedClients.inc();
  open.streams++;
  try {
    const limit = options.maxStreams ?? Number.POSITIVE_INFINITY;
    if (open.streams > limit) {
      metrics.streamsRefused.labels("max_streams").inc();
      throw new ConnectError(
        `the server holds its limit of ${limit} streams (maxStreams); retry with backoff`,
        Code.ResourceExhausted,
      );
    }
    const namespace = context.requestHeader.get(NAMESPACE_HEADER) ?? "";
    if (namespace.length > MAX_NAMESPACE_LENGTH) {
      throw new ConnectError(
        `${NAMESPACE_HEADER}: ${namespace.length} characters, more than the limit of ${MAX_NAMESPACE_LENGTH}`,
        Code.InvalidArgument,
      );
    }
    const stream = new SyncStream(
      {
        namespace,
        store: options.store.namespace(namespace),
        hub: options.hub,
        metrics,
        publishApplied: options.publishApplied ?? true,
        maxDeltasPerMessage: options.maxDeltasPerMessage,
        bucketsPerPart: perPart,
        rate: new RequestRate(
          options.maxRequestsPerSecond ?? Number.POSITIVE_INFINITY,
          options.now ?? Date.now,
        ),
        // gRPC, gRPC-Web and Connect all say "json" in the content type of a JSON stream.
        ...(context.requestHeader.get("content-type")?.includes("json")
          ? { broadcast: broadcastResponse, coalesce: undefined }
          : { broadcast: encodedBroadcastResponse, coalesce: encodedBroadcastsResponse }),
      },
      context.signal,
    );
    yield* stream.run(requests);
  } catch (error) {
    const status = ConnectError.from(error);
    code = codeLabel(status.code);
    throw status;
  } finally {
    open.streams--;
    metrics.connectedClients.dec();
    metrics.streamsClosed.labels(code).inc();
  }
}
