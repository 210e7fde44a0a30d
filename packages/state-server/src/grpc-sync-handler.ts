import {
  constants,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Stream,
} from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { GrpcFrameReader, NAMESPACE_HEADER, StateService } from "@fair/state-proto";
import { grpcFrames } from "./responses.js";
import { DecodeError, decodeSyncRequest, type SyncRequestInput } from "./sync-request-decoder.js";
import type { SyncService } from "./sync-service.js";

const SYNC_PATH = `/${StateService.typeName}/${StateService.method.sync.name}`;

/** What the gRPC path needs besides the streams themselves. */
export interface GrpcSyncOptions {
  readonly sync: SyncService;
  /** Largest request message accepted, in bytes (`maxMessageBytes`). */
  readonly maxMessageBytes: number;
  /** The status refusing a request's credentials, if any (see `refuseSyncToken`). */
  readonly authorize: (authorization: string | null, namespace: string) => ConnectError | undefined;
}

/**
 * Serves `Sync` over the gRPC protocol with protobuf and no compression,
 * straight on the HTTP/2 stream: requests decoded by hand, broadcasts
 * written as the frames every stream shares. Returns a request handler that
 * answers `false` for anything else (gRPC-Web, Connect, JSON, compressed
 * streams, other methods), which the caller hands to Connect.
 *
 * Why: under load the server spent most of its one thread in protobuf-es
 * decoding and in Connect's per-message machinery (async iterables, an
 * envelope copy and a promise per message per stream); bench/README.md has
 * the profiles and the figures before and after.
 */
export function createGrpcSyncHandler(
  options: GrpcSyncOptions,
): (request: Http2ServerRequest, response: Http2ServerResponse) => boolean {
  return (request, response) => {
    if (request.method !== "POST" || request.url !== SYNC_PATH) return false;
    const type = request.headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    const encoding = request.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    serveSync(request, response, options).catch(() => {
      // Only a write to a stream torn down under us lands here: let it go.
      response.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
    return true;
  };
}

async function serveSync(
  request: Http2ServerRequest,
  response: Http2ServerResponse,
  options: GrpcSyncOptions,
): Promise<void> {
  const abort = new AbortController();
  // The client went away (cancelled, reset or disconnected): end the stream.
  const onClose = () => abort.abort();
  response.once("close", onClose);
  let headersSent = false;
  const sendHeaders = () => {
    headersSent = true;
    response.writeHead(200, {
      "content-type": "application/grpc",
      ...options.sync.responseHeaders,
    });
  };
  let status: ConnectError | undefined;
  try {
    const namespace = header(request, NAMESPACE_HEADER);
    const refusal = options.authorize(header(request, "authorization"), namespace ?? "");
    if (refusal) throw refusal;
    const requests = readRequests(request, options.maxMessageBytes);
    // Cut off as a slow consumer while stuck: the reset ends the wait below.
    const frames = options.sync.serve(requests, namespace, grpcFrames, abort.signal, () =>
      resetIfStuck(response.stream),
    );
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
  response.end();
  // The client may still be sending; once the trailers are out, tell it to
  // stop (RST_STREAM NO_ERROR, as gRPC servers do) so the stream closes.
  if (!request.readableEnded) {
    response.once("finish", () => response.stream.close(constants.NGHTTP2_NO_ERROR));
  }
}

function header(request: Http2ServerRequest, name: string): string | null {
  const value = request.headers[name];
  return typeof value === "string" ? value : null;
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
 * For a stream the hub cut off as a slow consumer: if the client has left
 * data unread, it would never receive a status queued behind it, and the
 * writer would wait for it forever. Reset the stream instead (gRPC clients
 * report `ENHANCE_YOUR_CALM` as RESOURCE_EXHAUSTED) and let its buffers go.
 * A stream that can still take writes ends with its status as usual.
 */
export function resetIfStuck(stream: Http2Stream): void {
  if (stream.writableNeedDrain) stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
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
