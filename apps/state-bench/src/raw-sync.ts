// What the one-off benches (big-seed, memory) share: a Sync stream opened by
// hand on a connection of its own, and requests encoded as gRPC frames.
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from "node:http2";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { NAMESPACE_HEADER, SyncRequestSchema } from "@fair/state-proto";
import { frame } from "./grpc-frames.js";

/** One `SyncRequest` as a gRPC frame. */
export function requestFrame(request: MessageInitShape<typeof SyncRequestSchema>): Buffer {
  return frame(toBinary(SyncRequestSchema, create(SyncRequestSchema, request)));
}

/**
 * A `Sync` stream on a new connection to `address`; errors are the caller's
 * to observe (the stream's and the session's are never unhandled).
 */
export function openSync(
  address: string,
  options: { namespace?: string; windowBytes?: number } = {},
): { session: ClientHttp2Session; stream: ClientHttp2Stream } {
  const session = connect(`http://${address}`, {
    ...(options.windowBytes === undefined
      ? {}
      : { settings: { initialWindowSize: options.windowBytes } }),
  });
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/fair.state.v1.StateService/Sync",
    "content-type": "application/grpc+proto",
    te: "trailers",
    [NAMESPACE_HEADER]: options.namespace ?? "",
  });
  stream.on("error", () => {});
  return { session, stream };
}
