// FAIR-SPEC §4.2 and §13.2: Kirsch–Mitzenmacher level hashes and bucket columns, checked
// directly and through a tracker's stats with the same murmur seed.
import { expect, test } from "vitest";
import { localTracker, statsOf } from "../test/helpers.js";
import { type BaseHashes, baseHashes, levelHash } from "./bucket-index.js";
import { ClientIdEncoder } from "./client-id.js";

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
});

test("12: generating the hashes is deterministic", () => {
  expect(hashes("hello world", 3, 5)).toEqual(hashes("hello world", 3, 5));
});
