import type { BucketState } from "@fair/state-broadcast";
import { GRPC_PREFIX_BYTES } from "@fair/state-proto";

/** What marks a reply to a `StateRequest` (`full_state`, `full_state_last`). */
export type FullStateMark = "none" | "part" | "last";

/**
 * Encodes `SyncResponse { seed = 1; repeated Bucket buckets = 2; full_state = 3;
 * full_state_last = 4 }` straight from the hub's plain buckets into one
 * buffer, behind a gRPC frame prefix: sizes first, then one pass of writes,
 * no message objects and no intermediate chunks. The same bytes serve every
 * stream: the gRPC path writes them whole, the Connect path hands on the
 * message after the prefix.
 *
 * Why by hand: under fan-out the server encodes one message per batch, and a
 * subscriber that falls behind gets batches of its own (its merged backlog),
 * each encoded separately. With protobuf-es's `toBinary` that encoding and
 * its garbage were the largest share of the server's CPU at 8 clients
 * (bench/README.md, "Where the time goes"). The bytes are plain proto3 wire
 * format: every reader, ours or generated from the `.proto`, decodes them.
 * Every bucket field is written, zeros included, which proto3 readers accept.
 */
export function encodeResponse(
  seed: bigint,
  buckets: readonly BucketState[],
  mark: FullStateMark = "none",
): Buffer {
  const seedBytes = varint64(seed);
  let size = 1 + seedBytes.length + (mark === "none" ? 0 : mark === "part" ? 2 : 4);
  const bodies = new Uint8Array(buckets.length);
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketState;
    // row (tag + varint), col (tag + varint), prob (tag + 8), ts (tag + varint)
    const body =
      1 + varintSize(b.rowId) + 1 + varintSize(b.colId) + 9 + 1 + varintSize(b.lastUpdateTimeMs);
    bodies[i] = body;
    size += 1 + varintSize(body) + body;
  }
  const out = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + size);
  out[0] = 0; // not compressed
  out.writeUInt32BE(size, 1);
  let pos = GRPC_PREFIX_BYTES;
  out[pos++] = 0x08; // field 1, varint
  out.set(seedBytes, pos);
  pos += seedBytes.length;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketState;
    out[pos++] = 0x12; // field 2, length-delimited
    pos = writeVarint(out, pos, bodies[i] as number);
    out[pos++] = 0x08; // Bucket.row_id
    pos = writeVarint(out, pos, b.rowId);
    out[pos++] = 0x10; // Bucket.col_id
    pos = writeVarint(out, pos, b.colId);
    out[pos++] = 0x19; // Bucket.prob, fixed64
    out.writeDoubleLE(b.prob, pos);
    pos += 8;
    out[pos++] = 0x20; // Bucket.last_update_time_ms
    pos = writeVarint(out, pos, b.lastUpdateTimeMs);
  }
  if (mark !== "none") {
    out[pos++] = 0x18; // full_state = true
    out[pos++] = 1;
  }
  if (mark === "last") {
    out[pos++] = 0x20; // full_state_last = true
    out[pos++] = 1;
  }
  return out;
}

/** One gRPC frame holding the messages of `frames` concatenated (their prefixes dropped). */
export function concatFrames(frames: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const frame of frames) size += frame.length - GRPC_PREFIX_BYTES;
  const out = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + size);
  out[0] = 0;
  out.writeUInt32BE(size, 1);
  let pos = GRPC_PREFIX_BYTES;
  for (const frame of frames) {
    out.set(frame.subarray(GRPC_PREFIX_BYTES), pos);
    pos += frame.length - GRPC_PREFIX_BYTES;
  }
  return out;
}

/** Bytes of a varint for a non-negative integer below 2^53. */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, pos: number, value: number): number {
  while (value >= 128) {
    out[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

function varint64(value: bigint): Uint8Array {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 128n) {
    bytes.push(Number(rest & 127n) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Uint8Array.from(bytes);
}
