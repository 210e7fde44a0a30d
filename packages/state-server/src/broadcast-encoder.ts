import type { BucketState } from "@fair/state-broadcast";

/**
 * Encodes a broadcast `SyncResponse { seed = 1; repeated Bucket buckets = 2 }`
 * straight from the hub's plain buckets into one buffer: sizes first, then
 * one pass of writes, no message objects and no intermediate chunks.
 *
 * Why by hand: under fan-out the server encodes one message per batch, and a
 * subscriber that falls behind gets batches of its own (its merged backlog),
 * each encoded separately. With protobuf-es's `toBinary` that encoding and
 * its garbage were the largest share of the server's CPU at 8 clients
 * (bench/README.md, "Where the time goes"). The bytes are plain proto3 wire
 * format: every reader, ours or generated from the `.proto`, decodes them.
 * Every field is written, zeros included, which proto3 readers accept.
 */
export function encodeBroadcast(seed: bigint, buckets: readonly BucketState[]): Uint8Array {
  const seedBytes = varint64(seed);
  let size = 1 + seedBytes.length;
  const bodies = new Uint8Array(buckets.length);
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketState;
    // row (tag + varint), col (tag + varint), prob (tag + 8), ts (tag + varint)
    const body =
      1 + varintSize(b.rowId) + 1 + varintSize(b.colId) + 9 + 1 + varintSize(b.lastUpdateTimeMs);
    bodies[i] = body;
    size += 1 + varintSize(body) + body;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
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
