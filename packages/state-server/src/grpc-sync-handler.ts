import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { GrpcFrameReader, StateService } from "@fair/state-proto";
import type { SyncAdmission } from "./admission.js";
import { grpcFrames } from "./responses.js";
import { DecodeError, decodeSyncRequest, type SyncRequestInput } from "./sync-request-decoder.js";
import type { SyncService } from "./sync-service.js";

/** The path of `Sync`, the same for every protocol. */
export const SYNC_PATH = `/${StateService.typeName}/${StateService.method.sync.name}`;

/**
 * Whether the gRPC path serves `request`: `Sync` over the gRPC protocol with
 * protobuf and no compression. Everything else (gRPC-Web, Connect, JSON,
 * compressed streams, other methods) goes to Connect.
 */
export function isPlainGrpcSync(request: Http2ServerRequest): boolean {
  if (request.method !== "POST" || request.url !== SYNC_PATH) return false;
  const type = request.headers["content-type"];
  if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
  const encoding = request.headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

/**
 * Serves one `Sync` stream over the gRPC protocol (see
 * {@link isPlainGrpcSync}), straight on the HTTP/2 stream: requests decoded
 * by hand, broadcasts written as the frames every stream shares.
 *
 * Why: under load the server spent most of its one thread in protobuf-es
 * decoding and in Connect's per-message machinery (async iterables, an
 * envelope copy and a promise per message per stream); bench/README.md has
 * the profiles and the figures before and after.
 */
export function serveGrpcSync(
  request: Http2ServerRequest,
  response: Http2ServerResponse,
  sync: SyncService,
  admission: SyncAdmission,
): void {
  serveSync(request, response, sync, admission).catch(() => {
    // Only a write to a stream torn down under us lands here: let it go.
    response.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
}

async function serveSync(
  request: Http2ServerRequest,
  response: Http2ServerResponse,
  sync: SyncService,
  admission: SyncAdmission,
): Promise<void> {
  const abort = new AbortController();
  // The client went away (cancelled, reset or disconnected): end the stream.
  const onClose = () => abort.abort();
  response.once("close", onClose);
  // Read as the stream opens, sent with its first message (or its end).
  const headers = sync.responseHeaders();
  let headersSent = false;
  const sendHeaders = () => {
    headersSent = true;
    response.writeHead(200, { "content-type": "application/grpc", ...headers });
  };
  let status: ConnectError | undefined;
  try {
    const requests = readRequests(request, sync.maxMessageBytes);
    const frames = sync.serve(requests, admission, grpcFrames, abort.signal, headers);
    for await (const frame of frames) {
      if (!headersSent) sendHeaders();
      if (response.stream.destroyed) break;
      if (!response.write(frame)) await writable(response);
    }
  } catch (error) {
    status = ConnectError.from(error);
  } finally {
    response.off("close", onClose);
  }
  if (response.stream.destroyed) return;
  if (!headersSent) sendHeaders();
  response.addTrailers(
    status === undefined
      ? { "grpc-status": "0" }
      : {
          "grpc-status": String(status.code),
          "grpc-message": encodeURIComponent(status.rawMessage),
        },
  );
  // A client still sending is told to stop once the trailers are out
  // (RST_STREAM NO_ERROR): the request handler's resetOnceAnswered.
  response.end();
}

/** Resolves once the stream takes writes again or is gone. */
function writable(response: Http2ServerResponse): Promise<void> {
  // A stream already gone emits neither "drain" nor "close" again.
  if (response.stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

/**
 * The request messages of a gRPC stream, each checked against
 * `maxMessageBytes` as soon as its prefix arrives, so an oversized one is
 * refused before it is buffered.
 */
async function* readRequests(
  request: Http2ServerRequest,
  maxMessageBytes: number,
): AsyncGenerator<SyncRequestInput> {
  const reader = new GrpcFrameReader((compressed, length) => {
    if (compressed) {
      throw new ConnectError(
        "received a compressed message, but the stream negotiated no compression (grpc-encoding)",
        Code.Internal,
      );
    }
    if (length > maxMessageBytes) {
      throw new ConnectError(
        `a request message of ${length} bytes is over the limit of ${maxMessageBytes} (maxMessageBytes)`,
        Code.ResourceExhausted,
      );
    }
  });
  for await (const chunk of request as AsyncIterable<Buffer>) {
    for (const message of reader.push(chunk)) yield decoded(message);
  }
  if (reader.buffered > 0) {
    throw new ConnectError(
      `the request stream ended inside a message (${reader.buffered} bytes left over)`,
      Code.InvalidArgument,
    );
  }
}

function decoded(bytes: Uint8Array): SyncRequestInput {
  try {
    return decodeSyncRequest(bytes);
  } catch (error) {
    if (error instanceof DecodeError) throw new ConnectError(error.message, Code.InvalidArgument);
    throw error;
  }
}
