// Change messages as the scripts build them: a text header, then the
// changed buckets packed, 24 bytes each; and block hashes as a re-read
// returns them.
import type { BucketState } from "@fair/state-store";
import { describe, expect, test } from "vitest";
import {
  messageHeader,
  parseMessage,
  parseRowMember,
  parseRowPart,
  parseSeedField,
  parseValue,
} from "./message.js";

const seed = 1_764_136_800_000n;
const maxSeed = 2n ** 64n - 1n;

/** 24 bytes per bucket: little-endian uint32 row, uint32 column, double prob, double time. */
function packed(buckets: readonly BucketState[]): Buffer {
  const out = Buffer.alloc(buckets.length * 24);
  buckets.forEach((bucket, i) => {
    out.writeUInt32LE(bucket.rowId, i * 24);
    out.writeUInt32LE(bucket.colId, i * 24 + 4);
    out.writeDoubleLE(bucket.prob, i * 24 + 8);
    out.writeDoubleLE(bucket.lastUpdateTimeMs, i * 24 + 16);
  });
  return out;
}

/** A message as a script publishes it: the header start, ` <sequence> <seed field>\n`, the buckets. */
function message(
  header: string,
  sequence: string | number,
  seedField: string,
  buckets: readonly BucketState[] = [],
): Buffer {
  return Buffer.concat([
    Buffer.from(`${header} ${sequence} ${seedField}\n`, "latin1"),
    packed(buckets),
  ]);
}

/** A stored bucket value: prob and lastUpdateTimeMs, little-endian doubles. */
function value(prob: number, lastUpdateTimeMs: number): Buffer {
  const out = Buffer.alloc(16);
  out.writeDoubleLE(prob, 0);
  out.writeDoubleLE(lastUpdateTimeMs, 8);
  return out;
}

describe("change messages", () => {
  test("the header starts with the format, the replica and the group", () => {
    expect(messageHeader("r1", 0)).toBe("F2 r1 0");
    expect(messageHeader("replica-7.a_b", 255)).toBe("F2 replica-7.a_b 255");
  });

  test("a message round-trips origin, group, sequence, namespace, seed and exact doubles", () => {
    const namespace = "a b|{c}%:é\n";
    const buckets: BucketState[] = [
      { rowId: 3, colId: 5, prob: 1 / 3, lastUpdateTimeMs: 1_764_136_801_000 },
      { rowId: 0, colId: 0, prob: 0, lastUpdateTimeMs: 2 ** 53 - 1 },
      // Newline bytes in the packed part are not the header's end.
      { rowId: 10, colId: 10, prob: 1, lastUpdateTimeMs: 0 },
      { rowId: 0xff_ff_ff_ff, colId: 0xff_ff_ff_ff, prob: Number.MIN_VALUE, lastUpdateTimeMs: 12 },
    ];
    const data = message(
      messageHeader("r1", 3),
      17,
      `${encodeURIComponent(namespace)}|${maxSeed}`,
      buckets,
    );
    expect(parseMessage(data)).toEqual({
      origin: "r1",
      group: 3,
      sequence: 17,
      namespace,
      seed: maxSeed,
      buckets,
    });
    const parsed = parseMessage(data);
    expect(Object.is(parsed?.buckets[0]?.prob, 1 / 3)).toBe(true);
    expect(parsed?.buckets[1]?.lastUpdateTimeMs).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("a message without buckets, in the empty namespace, parses", () => {
    expect(parseMessage(message(messageHeader("r1", 0), 1, `|${seed}`))).toEqual({
      origin: "r1",
      group: 0,
      sequence: 1,
      namespace: "",
      seed,
      buckets: [],
    });
  });

  const bucket: BucketState = { rowId: 1, colId: 2, prob: 0.5, lastUpdateTimeMs: 3 };
  test.each([
    ["another format", message("F1 r1 0", 1, `ns|${seed}`, [bucket])],
    [
      "a trailing partial entry",
      Buffer.concat([message("F2 r1 0", 1, `ns|${seed}`, [bucket]), Buffer.alloc(10)]),
    ],
    ["a sequence that is not a number", message("F2 r1 0", "x", `ns|${seed}`, [bucket])],
    ["a group that is not a number", message("F2 r1 g", 1, `ns|${seed}`, [bucket])],
    ["a seed field without |", message("F2 r1 0", 1, `ns${seed}`, [bucket])],
    ["a seed that is not a number", message("F2 r1 0", 1, "ns|x", [bucket])],
    ["a namespace that is not percent-encoded", message("F2 r1 0", 1, `%E0%A4%A|${seed}`)],
    ["a header field too many", message("F2 r1 0 extra", 1, `ns|${seed}`)],
    ["no header end", Buffer.from(`F2 r1 0 1 ns|${seed}`, "latin1")],
  ])("%s does not parse", (_, data) => {
    expect(parseMessage(data)).toBeUndefined();
  });
});

describe("seed fields", () => {
  test("a seed field reads back its decoded namespace and seed", () => {
    expect(parseSeedField(`a%20b|${seed}`)).toEqual({ namespace: "a b", seed });
    // The last | separates: an encoded | stays in the namespace.
    expect(parseSeedField(`${encodeURIComponent("x|y")}|0`)).toEqual({
      namespace: "x|y",
      seed: 0n,
    });
    expect(parseSeedField(`|${maxSeed}`)).toEqual({ namespace: "", seed: maxSeed });
  });

  test.each([
    ["no |", "ns"],
    ["no seed", "ns|"],
    ["a seed that is not digits", "ns|1x"],
    ["a negative seed", "ns|-1"],
    ["a seed of more than 20 digits", "ns|123456789012345678901"],
    ["a namespace that is not percent-encoded", "%E0%A4%A|1"],
  ])("a seed field with %s does not parse", (_, field) => {
    expect(parseSeedField(field)).toBeUndefined();
  });
});

describe("block reads", () => {
  test("a value reads back its exact prob and time", () => {
    expect(parseValue(2, 7, value(1 / 3, 2 ** 53 - 1))).toEqual({
      rowId: 2,
      colId: 7,
      prob: 1 / 3,
      lastUpdateTimeMs: 2 ** 53 - 1,
    });
  });

  test.each([0, 8, 15, 17, 24])("a value of %i bytes does not parse", (length) => {
    expect(parseValue(0, 0, Buffer.alloc(length))).toBeUndefined();
  });

  test("a row part's member reads back its namespace, seed and row", () => {
    expect(parseRowMember(`${encodeURIComponent("a|b c")}|${seed}|3`)).toEqual({
      namespace: "a|b c",
      seed,
      row: 3,
    });
    expect(parseRowMember(`|${maxSeed}|4294967295`)).toEqual({
      namespace: "",
      seed: maxSeed,
      row: 4_294_967_295,
    });
  });

  test.each([
    ["no row", `ns|${seed}`],
    ["a row that is not a number", `ns|${seed}|x`],
    ["a row past 10 digits", `ns|${seed}|12345678901`],
    ["a seed that is not a number", "ns|x|3"],
    ["no seed", "ns|3"],
  ])("a row part's member with %s does not parse", (_, member) => {
    expect(parseRowMember(member)).toBeUndefined();
  });

  test("a row part reads back every bucket, tombstones (prob 0) included", () => {
    const fields = [
      Buffer.from("7"),
      value(0.5, 100),
      Buffer.from("9"),
      value(0, 90),
      Buffer.from("255"),
      value(1 / 3, 2 ** 53 - 1),
    ];
    expect(parseRowPart(2, fields)).toEqual([
      { rowId: 2, colId: 7, prob: 0.5, lastUpdateTimeMs: 100 },
      { rowId: 2, colId: 9, prob: 0, lastUpdateTimeMs: 90 },
      { rowId: 2, colId: 255, prob: 1 / 3, lastUpdateTimeMs: 2 ** 53 - 1 },
    ]);
    expect(parseRowPart(2, [])).toEqual([]);
  });

  test("a row part skips a value of the wrong length", () => {
    const fields = [Buffer.from("1"), Buffer.alloc(15), Buffer.from("2"), value(0.25, 5)];
    expect(parseRowPart(0, fields)).toEqual([
      { rowId: 0, colId: 2, prob: 0.25, lastUpdateTimeMs: 5 },
    ]);
  });
});
