import { constants, type Http2ServerRequest, type ServerHttp2Stream } from "node:http2";
import type { ConnectError } from "@connectrpc/connect";

/**
 * How the server ends an HTTP/2 stream whose client is still sending, the
 * same for the server's own gRPC path and for connect-node.
 *
 * A gRPC status ends the server's side only: a client that keeps writing
 * (into a message it was told is too big, or one it dribbles) would keep
 * the stream, its flow-control window and whatever the server buffered for
 * it. So once a response is out, the stream is reset — RST_STREAM NO_ERROR
 * after the trailers, as gRPC servers do — and its buffers go with it.
 */

/**
 * Resets `stream` once the server has answered it in full (its last DATA
 * and its trailers handed to HTTP/2) if the client has not ended its side.
 * Call it for every request, before its response ends.
 *
 * Node's compatibility response always asks for trailers: its own
 * `wantTrailers` listener, registered before the request is handed out,
 * submits them on the next turn (`setImmediate`); this one's turn comes
 * after it, so the RST_STREAM is queued behind the trailers and the client
 * reads the status first. (The response's own `finish` is no help: Node
 * emits it only when the stream closes.)
 */
export function resetOnceAnswered(stream: ServerHttp2Stream): void {
  stream.once("wantTrailers", () => {
    setImmediate(() => {
      if (stream.closed || stream.destroyed || stream.state.remoteClose === 1) return;
      stream.close(constants.NGHTTP2_NO_ERROR);
    });
  });
}

/**
 * Ends a request from outside its handler: its body, read by the server's
 * gRPC path or by connect-node, fails with `status`, so the handler ends the
 * stream with it (and {@link resetOnceAnswered} then resets it). A stream
 * that cannot take the status — its client reads nothing, so the trailers
 * would wait behind unread data — or whose body nobody is reading is reset
 * at once with ENHANCE_YOUR_CALM, which gRPC clients report as
 * RESOURCE_EXHAUSTED.
 *
 * The failure is the body's `error` event, not `destroy(status)`: destroying
 * the request also emits its `close`, which connect-node takes for the
 * client going away and which would end the stream without the status.
 */
export function failRequest(request: Http2ServerRequest, status: ConnectError): void {
  const { stream } = request;
  if (stream.closed || stream.destroyed) return;
  if (stream.writableNeedDrain || request.listenerCount("error") === 0) {
    resetStuck(stream);
    return;
  }
  request.emit("error", status);
}

/** Resets `stream` with ENHANCE_YOUR_CALM unless it is closed already. */
export function resetStuck(stream: ServerHttp2Stream): void {
  if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
}
