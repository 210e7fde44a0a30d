import { fromBinary } from "@bufbuild/protobuf";
import { GRPC_PREFIX_BYTES, SyncResponseSchema } from "@fair/state-proto";
import { describe, expect, test } from "vitest";
import { concatFrames, encodeResponse } from "./response-encoder.js";

const edgeBuckets = [
  { rowId: 0, colId: 0, prob: 0, lastUpdateTimeMs: 0 },
  { rowId: 255, colId: 2 ** 24 - 1, prob: 1, lastUpdateTimeMs: Number.MAX_SAFE_INTEGER },
  {
    rowId: 65_535,
    colId: 2 ** 32 - 1,
    prob: 0.3982056865255148,
    lastUpdateTimeMs: 1_764_136_800_123,
  },
  { rowId: 127, colId: 128, prob: 5e-324, lastUpdateTimeMs: 16_383 },
];

/** The message inside a frame, after checking the prefix says exactly its length, uncompressed. */
function unframe(frame: Uint8Array) {
  expect(frame[0]).toBe(0);
  expect(Buffer.from(frame).readUInt32BE(1)).toBe(frame.length - GRPC_PREFIX_BYTES);
  return fromBinary(SyncResponseSchema, frame.subarray(GRPC_PREFIX_BYTES));
}

const plain = (
  buckets: readonly { rowId: bigint; colId: bigint; prob: number; lastUpdateTimeMs: bigint }[],
) =>
  buckets.map((b) => ({
    rowId: Number(b.rowId),
    colId: Number(b.colId),
    prob: b.prob,
    lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
  }));

describe("encodeResponse", () => {
  test.each([
    ["no buckets", 0n, []],
    ["edge values", 18446744073709551615n, edgeBuckets],
  ])("%s: one gRPC frame that decodes to the same broadcast", (_name, seed, buckets) => {
    const decoded = unframe(encodeResponse(seed, buckets));
    expect(decoded.seed).toBe(seed);
    expect(decoded.fullState).toBe(false);
    expect(decoded.fullStateLast).toBe(false);
    expect(plain(decoded.buckets)).toEqual(buckets);
  });

  test.each([
    ["part", true, false],
    ["last", true, true],
  ] as const)("a full-state %s carries its marks", (mark, fullState, fullStateLast) => {
    const decoded = unframe(encodeResponse(7n, edgeBuckets, mark));
    expect(decoded).toMatchObject({ seed: 7n, fullState, fullStateLast });
    expect(plain(decoded.buckets)).toEqual(edgeBuckets);
  });
});

test("concatFrames: one frame whose message holds every bucket, in order", () => {
  const frames = [
    encodeResponse(9n, edgeBuckets.slice(0, 2)),
    encodeResponse(9n, edgeBuckets.slice(2)),
  ];
  const decoded = unframe(concatFrames(frames));
  expect(decoded.seed).toBe(9n);
  expect(plain(decoded.buckets)).toEqual(edgeBuckets);
});
