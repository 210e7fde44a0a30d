// docs/fair-spec.md §4.2 and §13.2: Kirsch–Mitzenmacher level hashes and bucket columns, checked
// directly, through a tracker's stats with the same murmur seed, and through the public
// bucketIndexesOf.
import { FakeTime } from "@fair/testing";
import { describe, expect, test } from "vitest";
import { distributedTracker, t0, windowMs } from "../test/distributed-helpers.js";
import { localTracker, statsOf } from "../test/helpers.js";
import { type BaseHashes, baseHashes, levelHash } from "./bucket-index.js";
import { ClientIdEncoder } from "./client-id.js";
import {
  bucketIndexesOf,
  defaultFairnessTrackerConfig,
  FairnessTracker,
  FairnessTrackerError,
  windowMurmurSeed,
} from "./index.js";

function hashes(id: string, n: number, seed: number): number[] {
  const encoder = new ClientIdEncoder();
  encoder.encode(id);
  const base: BaseHashes = { hash1: 0, hash2: 0 };
  baseHashes(encoder, seed, base);
  return Array.from({ length: n }, (_, level) => levelHash(base.hash1, base.hash2, level));
}

test.each([
  ["hello world", 3, 5, [2583984399, 135788340, 1982559577], 1000, [399, 340, 577]],
  ["hello_world", 2, 0, [2666736792, 4237838004], 24, [0, 12]],
  ["client_id", 3, 12345, [3387224739, 4068627487, 455062939], 1000, [739, 487, 939]],
  ["cl-0", 5, 42, [1556324004, 687597244, 4113837780, 3245111020, 2376384260], 7, [4, 5, 3, 4, 5]],
  [
    "aggressive-007",
    4,
    4294967295,
    [3182900160, 973337035, 3058741206, 849178081],
    1000,
    [160, 35, 206, 81],
  ],
])("13.2: %j, n = %i, seed %i", (id, n, seed, expected, m, columns) => {
  expect(hashes(id, n, seed)).toEqual(expected);
  const { tracker } = localTracker({ l: n, m }, { seeds: [seed, 0] });
  expect(statsOf(tracker.registerRequest(id)).bucketIndexes).toEqual(columns);
  expect(bucketIndexesOf(id, { l: n, m }, seed)).toEqual(columns);
});

test("12: generating the hashes is deterministic", () => {
  expect(hashes("hello world", 3, 5)).toEqual(hashes("hello world", 3, 5));
});

describe("the bucket index of each level (§14)", () => {
  // docs/fair-spec.md §14 item 9 (mutant m49, equivalent); the intended property is asserted anyway.
  test("exactly n level hashes, h_0 = the low 32 bits: L indexes, the first hash1 % M", () => {
    const { tracker } = localTracker({ l: 3, m: 1000 }, { seeds: [5, 6] });
    expect(statsOf(tracker.registerRequest("hello world")).bucketIndexes).toEqual([399, 340, 577]);
    expect(2583984399 % 1000).toBe(399);
  });

  // docs/fair-spec.md §14 item 12 (mutant m52).
  test("level hashes combine by addition mod 2^32, not XOR (13.2)", () => {
    const { tracker } = localTracker({ l: 5, m: 7 }, { seeds: [42, 0] });
    expect(statsOf(tracker.registerRequest("cl-0")).bucketIndexes).toEqual([4, 5, 3, 4, 5]);
    // With XOR, h_1 would be 1556324004 ^ hash2, not 687597244.
    expect(((1556324004 + 3426240536) >>> 0) % 7).toBe(5);
  });

  // docs/fair-spec.md §14 item 19 (mutant m59).
  test("stats.bucketIndexes[l] is exactly h_l % M, with no offset (13.2)", () => {
    const { tracker } = localTracker({ l: 3, m: 1000 }, { seeds: [12345, 0] });
    expect(statsOf(tracker.registerRequest("client_id")).bucketIndexes).toEqual([739, 487, 939]);
  });

  // docs/fair-spec.md §14 item 32 (mutant m72).
  test("the bucket index is h % M, not M − 1 − (h % M)", () => {
    const { tracker } = localTracker({ l: 4, m: 1000 }, { seeds: [4294967295, 0] });
    expect(statsOf(tracker.registerRequest("aggressive-007")).bucketIndexes).toEqual([
      160, 35, 206, 81,
    ]);
  });
});

describe("bucketIndexesOf", () => {
  test("gives a distributed tracker's stats.bucketIndexes under the window's murmur seed", () => {
    const { tracker, time } = distributedTracker({ l: 4, m: 64 }, { link: null });
    const config = tracker.config;
    const seed = windowMurmurSeed(t0, "checkout");
    for (const id of ["user-42", "client-00042", "é", new Uint8Array([0, 255, 7])]) {
      expect(bucketIndexesOf(id, config, seed)).toEqual(
        statsOf(tracker.registerRequest(id)).bucketIndexes,
      );
    }
    // The next window: the tracker switches on its next call.
    time.tick(windowMs);
    const stats = statsOf(tracker.registerRequest("user-42"));
    expect(tracker.structureIds.main).toBe(t0 + windowMs);
    const next = windowMurmurSeed(tracker.structureIds.main, "checkout");
    expect(bucketIndexesOf("user-42", config, next)).toEqual(stats.bucketIndexes);
    expect(next).not.toBe(windowMurmurSeed(t0, "checkout"));
  });

  test("gives a local tracker's stats.bucketIndexes under the murmur seed it was handed", () => {
    const time = new FakeTime(0);
    const tracker = new FairnessTracker(
      { ...defaultFairnessTrackerConfig(), includeStats: true },
      { now: time.now, timers: time.timers, murmurSeed: () => 987_654_321 },
    );
    expect(bucketIndexesOf("steady-001", tracker.config, 987_654_321)).toEqual(
      statsOf(tracker.registerRequest("steady-001")).bucketIndexes,
    );
    tracker.close();
  });

  test("one level of n buckets under seed 0 is murmur3's hash1 modulo n", () => {
    expect(bucketIndexesOf("hello world", { l: 1, m: 1000 }, 5)).toEqual([399]);
    expect(bucketIndexesOf("hello world", { l: 1, m: 2 ** 32 - 1 }, 5)).toEqual([2583984399]);
  });

  test("returns a new array each call", () => {
    const a = bucketIndexesOf("a", { l: 3, m: 10 }, 1);
    const b = bucketIndexesOf("a", { l: 3, m: 10 }, 1);
    expect(a).toEqual(b);
    expect(a).not.toBe(b);
  });

  test("refuses a bad id, l, m or murmur seed with invalid_argument", () => {
    const bad: [unknown, unknown, unknown, unknown][] = [
      [42, 3, 10, 0],
      ["a", 0, 10, 0],
      ["a", 3, 0, 0],
      ["a", 1.5, 10, 0],
      ["a", 3, 2 ** 32, 0],
      ["a", 3, Number.NaN, 0],
      ["a", 3, 10, -1],
      ["a", 3, 10, 2 ** 32],
      ["a", 3, 10, 0.5],
      ["a", 3, 10, Number.NaN],
    ];
    for (const [id, l, m, seed] of bad) {
      const call = () =>
        bucketIndexesOf(id as string, { l: l as number, m: m as number }, seed as number);
      expect(call).toThrow(FairnessTrackerError);
      try {
        call();
      } catch (error) {
        expect((error as FairnessTrackerError).code).toBe("invalid_argument");
      }
    }
  });
});
