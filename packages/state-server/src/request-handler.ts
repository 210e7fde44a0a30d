import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { createContextValues } from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { type Admission, admissionKey } from "./admission.js";
import { isPlainGrpcSync, SYNC_PATH, serveGrpcSync } from "./grpc-sync-handler.js";
import type { HealthStatus } from "./health.js";
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
}

/**
 * One handler for every HTTP/2 request of the gRPC listener: `Sync` over
 * plain gRPC on the server's own path (`grpc-sync-handler.ts`), everything
 * else — gRPC-Web, Connect, JSON, compressed streams, `grpc.health.v1` —
 * through Connect. Both transports serve `Sync` from the same
 * {@link SyncService} with the same {@link Admission}, made once per request
 * here: one set of policies, whichever protocol a client speaks.
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
  const plainGrpc = options.compression === "none";
  return (request, response) => {
    if (plainGrpc && isPlainGrpcSync(request)) {
      serveGrpcSync(request, response, sync, admission.admit(request));
    } else {
      connect(request, response);
    }
  };
}
