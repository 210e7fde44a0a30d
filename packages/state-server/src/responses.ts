import { create } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { Batch, BucketState } from "@fair/state-broadcast";
import {
  type Bucket,
  BucketSchema,
  GRPC_PREFIX_BYTES,
  type SyncResponse,
  SyncResponseSchema,
} from "@fair/state-proto";
import { concatFrames, encodeResponse } from "./response-encoder.js";

/**
 * How a stream turns what it sends into messages of its transport: framed
 * bytes for the gRPC path, `SyncResponse`s for Connect.
 */
export interface SyncEncoding<Out> {
  /** One hub batch as one message. */
  broadcast(batch: Batch): Out;
  /**
   * Several ready batches of one seed as one message, so a stream that has
   * fallen a few batches behind catches up with one write; undefined where
   * that is not possible (JSON).
   */
  readonly coalesce: ((batches: readonly Batch[]) => Out) | undefined;
  /** One part of the reply to a `StateRequest`. */
  fullStatePart(seed: bigint, buckets: readonly BucketState[], last: boolean): Out;
}

const framedBytes = new WeakMap<Batch, Buffer>();

/** The batch's broadcast as one gRPC frame, encoded once for every stream that sends it. */
function framed(batch: Batch): Buffer {
  let bytes = framedBytes.get(batch);
  if (bytes === undefined) {
    bytes = encodeResponse(batch.seed, batch.buckets);
    framedBytes.set(batch, bytes);
  }
  return bytes;
}

/**
 * Encoded protobuf messages concatenate into one message whose repeated
 * fields hold all their elements (the seed, a scalar, is the same in each),
 * so several broadcasts of one seed become one. A bucket that appears twice
 * is applied in order: the later value wins.
 */
function framedTogether(batches: readonly Batch[]): Buffer {
  const [first] = batches;
  if (batches.length === 1 && first) return framed(first);
  return concatFrames(batches.map(framed));
}

/** For the gRPC path (`grpc-sync-handler.ts`): each message as the gRPC frame it is written as. */
export const grpcFrames: SyncEncoding<Uint8Array> = {
  broadcast: framed,
  coalesce: framedTogether,
  fullStatePart: (seed, buckets, last) => encodeResponse(seed, buckets, last ? "last" : "part"),
};

const carriers = new WeakMap<Batch, SyncResponse>();

/**
 * For Connect's binary codecs. Connect serializes each message it is given,
 * per stream, so a broadcast to N streams would be encoded N times. Instead
 * each stream yields an otherwise empty message whose only content is the
 * shared encoded bytes as protobuf "unknown fields", which protobuf-es
 * writes out verbatim: the bytes on the wire are exactly the encoded
 * broadcast.
 */
export const connectBinary: SyncEncoding<SyncResponse> = {
  broadcast(batch) {
    let message = carriers.get(batch);
    if (message === undefined) {
      message = carrying(framed(batch));
      carriers.set(batch, message);
    }
    return message;
  },
  coalesce: (batches) => carrying(framedTogether(batches)),
  fullStatePart: (seed, buckets, last) =>
    carrying(encodeResponse(seed, buckets, last ? "last" : "part")),
};

/** A message that protobuf-es writes as exactly the message inside `frame`. */
function carrying(frame: Buffer): SyncResponse {
  const message = create(SyncResponseSchema);
  const bytes = frame.subarray(GRPC_PREFIX_BYTES);
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

const messages = new WeakMap<Batch, SyncResponse>();

/** For Connect's JSON codecs, which write no unknown fields: real messages, one per batch. */
export const connectJson: SyncEncoding<SyncResponse> = {
  broadcast(batch) {
    let message = messages.get(batch);
    if (message === undefined) {
      message = create(SyncResponseSchema, {
        seed: batch.seed,
        buckets: batch.buckets.map(toBucket),
      });
      messages.set(batch, message);
    }
    return message;
  },
  coalesce: undefined,
  fullStatePart: (seed, buckets, last) =>
    create(SyncResponseSchema, {
      seed,
      buckets: buckets.map(toBucket),
      fullState: true,
      fullStateLast: last,
    }),
};

function toBucket(bucket: BucketState): Bucket {
  return create(BucketSchema, {
    rowId: BigInt(bucket.rowId),
    colId: BigInt(bucket.colId),
    prob: bucket.prob,
    lastUpdateTimeMs: BigInt(bucket.lastUpdateTimeMs),
  });
}

/**
 * An upper bound on one `Bucket`'s encoded size inside a `SyncResponse`:
 * tags and the length prefix (6), row and column varints (≤ 5 each for
 * ids < 2^32), the double (8), a millisecond timestamp varint (≤ 7 until
 * the year 4000), rounded up with room to spare.
 */
const MAX_BUCKET_BYTES = 40;

/** How many buckets fit in one full-state part under the message size limit. */
export function bucketsPerPart(maxMessageBytes: number): number {
  return Math.max(1, Math.floor((maxMessageBytes - 64) / MAX_BUCKET_BYTES));
}
