/**
 * The load generator writes pre-encoded gRPC frames (and reads them back with
 * `GrpcFrameReader` from `@fair/state-proto`), so that neither protobuf
 * encoding nor full decoding limits what it can send or count (see the
 * README's "generator on its own" figure).
 */
import { GRPC_PREFIX_BYTES } from "@fair/state-proto";

/** A gRPC message frame: flag byte 0 (uncompressed), big-endian length, bytes. */
export function frame(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, GRPC_PREFIX_BYTES);
  return framed;
}
