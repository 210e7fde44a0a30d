// SlotIndex is a hand-written hash table: it must answer exactly as a Map
// would, through growth, the split into shards and deletions that shift
// probe runs back.
import fc from "fast-check";
import { expect, test } from "vitest";
import { SlotIndex } from "./slot-index.js";

test("adds, lookups and deletions agree with a Map", () => {
  const op = fc.oneof(
    fc.record({ add: fc.integer({ min: 0, max: 60 }) }),
    fc.record({ remove: fc.integer({ min: 0, max: 60 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const index = new SlotIndex();
      const map = new Map<number, number>();
      ops.forEach((step, i) => {
        // Keys past 2^32 and next to 2^53 too: the hash reads both halves.
        const key =
          "add" in step ? step.add * 2 ** 37 + step.add : step.remove * 2 ** 37 + step.remove;
        if ("add" in step && !map.has(key)) {
          index.add(key, i);
          map.set(key, i);
        } else if ("remove" in step && map.has(key)) {
          index.delete(key);
          map.delete(key);
        }
      });
      expect(index.size).toBe(map.size);
      for (let k = 0; k <= 60; k++) {
        const key = k * 2 ** 37 + k;
        expect(index.get(key)).toBe(map.get(key));
      }
    }),
  );
});

test("past the split into shards, every key is found and no other", () => {
  const index = new SlotIndex();
  const key = (i: number) => (i % 256) * 2 ** 24 + Math.floor(i / 256);
  const count = 100_000;
  for (let i = 0; i < count; i++) index.add(key(i), i);
  // Delete every third, then add them back with new slots.
  for (let i = 0; i < count; i += 3) index.delete(key(i));
  expect(index.size).toBe(count - Math.ceil(count / 3));
  const wrong = (expected: (i: number) => number | undefined) =>
    Array.from({ length: count }, (_, i) => i).filter((i) => index.get(key(i)) !== expected(i));
  expect(wrong((i) => (i % 3 === 0 ? undefined : i))).toEqual([]);
  for (let i = 0; i < count; i += 3) index.add(key(i), count + i);
  expect(wrong((i) => (i % 3 === 0 ? count + i : i))).toEqual([]);
  expect(index.has(key(count))).toBe(false);
  expect(index.has(2 ** 53 - 1)).toBe(false);
  expect(index.size).toBe(count);
});
