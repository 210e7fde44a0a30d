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
  /** An upper bound on one bucket's size in a message of this encoding, in bytes. */
  readonly maxBucketBytes: number;
  /**
   * Most buckets one full-state part carries, whatever `maxMessageBytes`
   * allows: what the server's one thread can read and encode in about a
   * millisecond, so answering a `StateRequest` for a big seed never holds
   * the other streams up for longer than that between two parts.
   */
  readonly maxBucketsPerPart: number;
}

/**
 * An upper bound on one `Bucket`'s encoded size inside a binary
 * `SyncResponse`: tags and the length prefix (6), row and column varints
 * (≤ 5 each for ids < 2^32), the double (8), a millisecond timestamp varint
 * (≤ 7 until the year 4000), rounded up with room to spare. Typical: 24.
 */
const MAX_BINARY_BUCKET_BYTES = 40;

/**
 * The same in protobuf JSON, which spells every field out and writes 64-bit
 * integers as strings: `{"rowId":"4294967295","colId":"4294967295",
 * "prob":1.2345678901234567e-100,"lastUpdateTimeMs":"9007199254740991"},`
 * is 113 bytes. Typical: 83.
 */
const MAX_JSON_BUCKET_BYTES = 128;

/*
 * Part caps, measured on the 2-core machine (Node 20, one seed of 2^20
 * buckets in the in-memory store; the cost of `readSeed` plus encoding one
 * part, median of 60 parts):
 *
 *   buckets per part       1024    4096    8192   16384   32768
 *   binary (gRPC frame)   0.12    0.48    0.98    2.1     4.1   ms   (24 B a bucket)
 *   JSON (toJsonString)   0.98    3.95    9.2    24.8    60.9   ms   (83 B a bucket)
 *
 * Both grow linearly (about 120 ns a bucket binary, 1 µs JSON) until the
 * part stops fitting the caches. So: 8192 buckets binary (~1 ms, ~200 KiB),
 * 1024 JSON (~1 ms, ~85 KiB). A seed of 2^22 buckets is 512 binary parts.
 */
const MAX_BINARY_BUCKETS_PER_PART = 8192;
const MAX_JSON_BUCKETS_PER_PART = 1024;

/**
 * How many buckets one full-state part of `encoding` carries: as many as
 * fit under `maxMessageBytes` with room to spare, at most the encoding's
 * `maxBucketsPerPart`, at least one.
 */
export function bucketsPerPart(maxMessageBytes: number, encoding: SyncEncoding<unknown>): number {
  const fit = Math.floor((maxMessageBytes - 64) / encoding.maxBucketBytes);
  return Math.max(1, Math.min(encoding.maxBucketsPerPart, fit));
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
  maxBucketBytes: MAX_BINARY_BUCKET_BYTES,
  maxBucketsPerPart: MAX_BINARY_BUCKETS_PER_PART,
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
  maxBucketBytes: MAX_BINARY_BUCKET_BYTES,
  maxBucketsPerPart: MAX_BINARY_BUCKETS_PER_PART,
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
  maxBucketBytes: MAX_JSON_BUCKET_BYTES,
  maxBucketsPerPart: MAX_JSON_BUCKETS_PER_PART,
};

function toBucket(bucket: BucketState): Bucket {
  return create(BucketSchema, {
    rowId: BigInt(bucket.rowId),
    colId: BigInt(bucket.colId),
    prob: bucket.prob,
    lastUpdateTimeMs: BigInt(bucket.lastUpdateTimeMs),
  });
}
