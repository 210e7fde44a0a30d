import { create } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { Batch, BucketState } from "@fair/state-broadcast";
import {
  type Bucket,
  BucketSchema,
  type SyncResponse,
  SyncResponseSchema,
} from "@fair/state-proto";
import { encodeBroadcast } from "./broadcast-encoder.js";

/**
 * An upper bound on one `Bucket`'s encoded size inside a `SyncResponse`:
 * tags and the length prefix (6), row and column varints (≤ 5 each for
 * ids < 2^32), the double (8), a millisecond timestamp varint (≤ 7 until
 * the year 4000), rounded up with room to spare.
 */
const MAX_BUCKET_BYTES = 40;

function toBucket(bucket: BucketState): Bucket {
  return create(BucketSchema, {
    rowId: BigInt(bucket.rowId),
    colId: BigInt(bucket.colId),
    prob: bucket.prob,
    lastUpdateTimeMs: BigInt(bucket.lastUpdateTimeMs),
  });
}

const broadcastMessages = new WeakMap<Batch, SyncResponse>();

/**
 * The broadcast message for a hub batch, built once per batch: every stream
 * that receives the same batch yields the same message object.
 */
export function broadcastResponse(batch: Batch): SyncResponse {
  let message = broadcastMessages.get(batch);
  if (message === undefined) {
    message = create(SyncResponseSchema, {
      seed: batch.seed,
      buckets: batch.buckets.map(toBucket),
    });
    broadcastMessages.set(batch, message);
  }
  return message;
}

const encodedBytes = new WeakMap<Batch, Uint8Array>();
const encodedMessages = new WeakMap<Batch, SyncResponse>();

/**
 * The broadcast for a hub batch, encoded once for every stream that
 * receives it. Connect serializes each message it is given, per stream; a
 * broadcast to N streams would be encoded N times, and that encoding was
 * the server's largest CPU cost under fan-out (bench/README.md). So the
 * batch is encoded once, and each stream yields an otherwise empty message
 * whose only content is those bytes as protobuf "unknown fields", which
 * protobuf-es writes out verbatim: the bytes on the wire are exactly the
 * encoded broadcast. Only for the binary codecs: JSON writes no unknown
 * fields, so JSON streams get {@link broadcastResponse}.
 */
export function encodedBroadcastResponse(batch: Batch): SyncResponse {
  let message = encodedMessages.get(batch);
  if (message === undefined) {
    message = carrying(bytesOf(batch));
    encodedMessages.set(batch, message);
  }
  return message;
}

/**
 * Several broadcasts of one seed as one message. Encoded protobuf messages
 * concatenate into one message whose repeated fields hold all their
 * elements (the seed, a scalar, is the same in each), so a stream that has
 * fallen a few batches behind catches up with one write instead of many.
 * A bucket that appears twice is applied in order: the later value wins.
 */
export function encodedBroadcastsResponse(batches: readonly Batch[]): SyncResponse {
  const [first] = batches;
  if (batches.length === 1 && first) return encodedBroadcastResponse(first);
  return carrying(Buffer.concat(batches.map(bytesOf)));
}

function bytesOf(batch: Batch): Uint8Array {
  let bytes = encodedBytes.get(batch);
  if (bytes === undefined) {
    bytes = encodeBroadcast(batch.seed, batch.buckets);
    encodedBytes.set(batch, bytes);
  }
  return bytes;
}

/** A message that protobuf-es writes as exactly `bytes`. */
function carrying(bytes: Uint8Array): SyncResponse {
  const message = create(SyncResponseSchema);
  if (bytes.length > 0) {
    // protobuf-es stores an unknown field as its tag and the raw bytes after
    // the tag; one "field" holding everything after the first tag reproduces
    // the whole message.
    const reader = new BinaryReader(bytes);
    const [no, wireType] = reader.tag();
    message.$unknown = [{ no, wireType, data: bytes.subarray(reader.pos) }];
  }
  return message;
}

/** How many buckets fit in one full-state part under the message size limit. */
export function bucketsPerPart(maxMessageBytes: number): number {
  return Math.max(1, Math.floor((maxMessageBytes - 64) / MAX_BUCKET_BYTES));
}

/**
 * The reply to a `StateRequest`: the seed's buckets split into parts of at
 * most `perPart`, each marked `full_state`, the last also `full_state_last`.
 * An unknown seed gets one empty part, so the requester knows the reply came.
 */
export function* fullStateResponses(
  seed: bigint,
  buckets: readonly BucketState[],
  perPart: number,
): Generator<SyncResponse> {
  let start = 0;
  do {
    const end = Math.min(buckets.length, start + perPart);
    yield create(SyncResponseSchema, {
      seed,
      buckets: buckets.slice(start, end).map(toBucket),
      fullState: true,
      fullStateLast: end === buckets.length,
    });
    start = end;
  } while (start < buckets.length);
}
