import { fromBinary } from "@bufbuild/protobuf";
import { SyncResponseSchema } from "@fair/state-proto";
import { expect, test } from "vitest";
import { encodeBroadcast } from "./broadcast-encoder.js";

test.each([
  ["no buckets", 0n, []],
  [
    "edge values",
    18446744073709551615n,
    [
      { rowId: 0, colId: 0, prob: 0, lastUpdateTimeMs: 0 },
      { rowId: 255, colId: 2 ** 24 - 1, prob: 1, lastUpdateTimeMs: Number.MAX_SAFE_INTEGER },
      {
        rowId: 65_535,
        colId: 2 ** 32 - 1,
        prob: 0.3982056865255148,
        lastUpdateTimeMs: 1_764_136_800_123,
      },
      { rowId: 127, colId: 128, prob: 5e-324, lastUpdateTimeMs: 16_383 },
    ],
  ],
])("%s: the hand-written encoding decodes to the same broadcast", (_name, seed, buckets) => {
  const decoded = fromBinary(SyncResponseSchema, encodeBroadcast(seed, buckets));
  expect(decoded.seed).toBe(seed);
  expect(decoded.fullState).toBe(false);
  expect(
    decoded.buckets.map((b) => ({
      rowId: Number(b.rowId),
      colId: Number(b.colId),
      prob: b.prob,
      lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
    })),
  ).toEqual(buckets);
});
