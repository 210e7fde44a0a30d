import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { BucketState } from "./batch.js";
import { BucketMap } from "./bucket-map.js";

const SEEDS = [1_764_136_800_000n, 1_764_137_100_000n];

// A model of the map: per seed, the latest state per key in first-seen
// order, where a key taken and seen again counts as new.
class Model {
  readonly seeds = new Map<bigint, Map<string, BucketState>>();

  merge(seed: bigint, buckets: readonly BucketState[]): number {
    if (buckets.length === 0) return 0;
    let states = this.seeds.get(seed);
    if (states === undefined) {
      states = new Map();
      this.seeds.set(seed, states);
    }
    let replaced = 0;
    for (const b of buckets) {
      const key = `${b.rowId}:${b.colId}`;
      if (states.has(key)) replaced++;
      states.set(key, b);
    }
    return replaced;
  }

  take(max: number): { seed: bigint; buckets: BucketState[] } | undefined {
    for (const [seed, states] of this.seeds) {
      const buckets = [...states.values()].slice(0, max);
      for (const b of buckets) states.delete(`${b.rowId}:${b.colId}`);
      if (states.size === 0) this.seeds.delete(seed);
      return { seed, buckets };
    }
    return undefined;
  }

  get size(): number {
    let size = 0;
    for (const states of this.seeds.values()) size += states.size;
    return size;
  }
}

const bucketArb = fc.record({
  rowId: fc.integer({ min: 0, max: 7 }),
  colId: fc.integer({ min: 0, max: 300 }),
  prob: fc.double({ min: 0, max: 1, noNaN: true }),
  lastUpdateTimeMs: fc.integer({ min: 0, max: 2 ** 40 }),
});

const op = fc.oneof(
  fc.record({
    kind: fc.constant("merge" as const),
    seed: fc.constantFrom(...SEEDS),
    buckets: fc.array(bucketArb, { maxLength: 200 }),
  }),
  fc.record({ kind: fc.constant("take" as const), max: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ kind: fc.constant("drain" as const), max: fc.integer({ min: 1, max: 300 }) }),
);

const bySeed = (batches: readonly { seed: bigint; buckets: readonly BucketState[] }[]) => {
  const out = new Map<bigint, BucketState[]>();
  for (const { seed, buckets } of batches) out.set(seed, [...(out.get(seed) ?? []), ...buckets]);
  return out;
};

function drainModel(model: Model, max: number) {
  const batches: { seed: bigint; buckets: BucketState[] }[] = [];
  for (let next = model.take(max); next; next = model.take(max)) batches.push(next);
  return batches;
}

describe("BucketMap", () => {
  test("behaves as a map of latest states, seeds and keys in first-seen order", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const map = new BucketMap();
        const model = new Model();
        for (const o of ops) {
          if (o.kind === "merge") {
            expect(map.merge(o.seed, o.buckets)).toBe(model.merge(o.seed, o.buckets));
          } else if (o.kind === "take") {
            const batch = map.take("ns", o.max);
            expect(batch && { seed: batch.seed, buckets: batch.buckets }).toEqual(
              model.take(o.max),
            );
          } else {
            const batches = map.drain("ns", o.max);
            expect(batches.map((b) => ({ seed: b.seed, buckets: b.buckets }))).toEqual(
              drainModel(model, o.max),
            );
          }
          expect(map.size).toBe(model.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("keeping capacity between rounds, as the hub's interval buffer does, drains the same states", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const map = new BucketMap({ keepCapacity: true });
        const model = new Model();
        for (const o of ops) {
          if (o.kind === "merge") {
            expect(map.merge(o.seed, o.buckets)).toBe(model.merge(o.seed, o.buckets));
          } else {
            // A kept seed holds its place, so only the order across seeds may differ.
            expect(bySeed(map.drain("ns", o.max))).toEqual(bySeed(drainModel(model, o.max)));
          }
          expect(map.size).toBe(model.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("holds 100k distinct keys and returns each once with its latest state", () => {
    const map = new BucketMap();
    for (let round = 0; round < 3; round++) {
      const buckets: BucketState[] = [];
      for (let i = 0; i < 100_000; i++) {
        buckets.push({ rowId: i % 7, colId: i, prob: round / 10, lastUpdateTimeMs: round });
      }
      map.merge(SEEDS[0] as bigint, buckets);
    }
    expect(map.size).toBe(100_000);
    const out = map.drain("ns", 1024).flatMap((batch) => batch.buckets);
    expect(out).toHaveLength(100_000);
    expect(new Set(out.map((b) => b.colId)).size).toBe(100_000);
    expect(out.every((b) => b.prob === 0.2 && b.lastUpdateTimeMs === 2)).toBe(true);
    expect(map.size).toBe(0);
  });
});
