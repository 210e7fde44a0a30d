import { describe, expect, test } from "vitest";
import { messageHeader, parseMessage, parseRowHash } from "./message.js";

describe("change messages", () => {
  test("a message round-trips namespace, seed, rows and exact numbers", () => {
    const text = [
      messageHeader("r1", encodeURIComponent("a b|{c}"), 2n ** 64n - 1n),
      "R 3 17",
      "5 0.333333333333333315 1764136801000",
      "R 255 1",
      "16777215 0 12",
    ].join("\n");
    expect(parseMessage(text)).toEqual({
      origin: "r1",
      namespace: "a b|{c}",
      seed: 2n ** 64n - 1n,
      rows: [
        {
          row: 3,
          version: 17,
          buckets: [{ rowId: 3, colId: 5, prob: 1 / 3, lastUpdateTimeMs: 1_764_136_801_000 }],
        },
        {
          row: 255,
          version: 1,
          buckets: [{ rowId: 255, colId: 16_777_215, prob: 0, lastUpdateTimeMs: 12 }],
        },
      ],
    });
  });

  test.each([
    ["another format", "F2 r1 ns 300000"],
    ["a bucket before any row", "F1 r1 ns 300000\n1 0.5 1"],
    ["a seed that is not a number", "F1 r1 ns x"],
    ["a probability that is not a number", "F1 r1 ns 300000\nR 0 1\n1 x 1"],
  ])("%s does not parse", (_, text) => {
    expect(parseMessage(text)).toBeUndefined();
  });

  test("a row hash reads back its version and every bucket, tombstones included", () => {
    expect(parseRowHash(2, { v: "4", "7": "0.5 100", "9": "0 90" })).toEqual({
      version: 4,
      buckets: [
        { rowId: 2, colId: 7, prob: 0.5, lastUpdateTimeMs: 100 },
        { rowId: 2, colId: 9, prob: 0, lastUpdateTimeMs: 90 },
      ],
    });
  });
});
