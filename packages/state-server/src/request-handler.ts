import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { createContextValues } from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Timers } from "@fair/timers";
import { type Admission, admissionKey } from "./admission.js";
import { isPlainGrpcSync, SYNC_PATH, serveGrpcSync } from "./grpc-sync-handler.js";
import type { HealthStatus } from "./health.js";
import type { StateServerMetrics } from "./metrics.js";
import { RequestBudget } from "./request-budget.js";
import { resetOnceAnswered } from "./stream-end.js";
import { registerSyncService, type SyncService } from "./sync-service.js";

/** What the request handler serves, and how. */
export interface RequestHandlerOptions {
  readonly sync: SyncService;
  readonly health: HealthStatus;
  readonly admission: Admission;
  /** `"gzip"` lets Connect accept and send gzip; the gRPC path then serves nothing. */
  readonly compression: "none" | "gzip";
  /** Largest message accepted or sent, in bytes. */
  readonly maxMessageBytes: number;
  /** Aborted when the server stops: ends every Connect stream and health watch. */
  readonly shutdownSignal: AbortSignal;
  /** A request message not complete this long after its first byte ends its stream. */
  readonly messageTimeoutMs: number;
  /** Most bytes of unfinished request messages held over all streams. */
  readonly maxBufferedRequestBytes: number;
  /** Where refusals of the request budget and its total are counted. */
  readonly metrics: StateServerMetrics;
  /** Timers for the request budget's sweep. */
  readonly timers: Timers;
}

/**
 * One handler for every HTTP/2 request of the gRPC listener: `Sync` over
 * plain gRPC on the server's own path (`grpc-sync-handler.ts`), everything
 * else — gRPC-Web, Connect, JSON, compressed streams, `grpc.health.v1` —
 * through Connect. Both transports serve `Sync` from the same
 * {@link SyncService} with the same {@link Admission}, made once per request
 * here: one set of policies, whichever protocol a client speaks.
 *
 * Every request's body is watched by one {@link RequestBudget}
 * (`messageTimeoutMs`, `maxBufferedRequestBytes`), and every stream whose
 * client is still sending once it has been answered — after a refusal, a
 * message over `maxMessageBytes`, a budget's cut — is reset
 * (`stream-end.ts`), whichever path served it.
 */
export function createRequestHandler(
  options: RequestHandlerOptions,
): (request: Http2ServerRequest, response: Http2ServerResponse) => void {
  const { sync, health, admission } = options;
  const connect = connectNodeAdapter({
    routes(router) {
      registerSyncService(router, sync);
      health.register(router);
    },
    acceptCompression: options.compression === "gzip" ? [compressionGzip] : [],
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    shutdownSignal: options.shutdownSignal,
    contextValues(request) {
      const values = createContextValues();
      if ("stream" in request && request.url === SYNC_PATH) {
        values.set(admissionKey, admission.admit(request));
      }
      return values;
    },
  });
  const budget = new RequestBudget({
    messageTimeoutMs: options.messageTimeoutMs,
    maxBufferedRequestBytes: options.maxBufferedRequestBytes,
    maxMessageBytes: options.maxMessageBytes,
    metrics: options.metrics,
    timers: options.timers,
  });
  const plainGrpc = options.compression === "none";
  return (request, response) => {
    resetOnceAnswered(request.stream);
    budget.watch(request);
    if (plainGrpc && isPlainGrpcSync(request)) {
      serveGrpcSync(request, response, sync, admission.admit(request));
    } else {
      // connect-node waits for "drain" before its next write. A stream reset
      // under it (a slow consumer cut off while reading nothing) never emits
      // one, and its handler would stay parked for good, holding its part and
      // its place in maxStreams; after "close" it never will, so say it now.
      response.once("close", () => response.emit("drain"));
      connect(request, response);
    }
  };
}
