// Learning mode (`applyOffer`): after an epoch change clients offer back
// their view of a seed, merged by maximum at a common time — each offered
// bucket (q, u) and the stored (p, t) decayed to T = max(t, u), the larger
// kept stamped T, an unchanged bucket left as it was — only while the
// store's epoch is no older than `learningPeriodMs`.

import { create } from "@bufbuild/protobuf";
import { type StateOffer, StateOfferSchema } from "@fair/state-proto";
import type {
  BucketState,
  StateOfferInput,
  Store,
  StoreNamespace,
  StoreStats,
} from "@fair/state-store";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  type BucketTuple,
  expectStoreError,
  offer,
  seed0,
  sorted,
  t0,
  update,
  windowMs,
} from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

const lambda = 0.01;
const seedAt = (windows: number) => seed0 + BigInt(windows * windowMs);
/** `p` as of `t`, decayed to `at` (both in ms) at `rate` per second. */
const decayed = (p: number, t: number, at: number, rate = lambda) =>
  p * Math.exp((-rate * (at - t)) / 1000);

const noOffers: StoreStats["offers"] = {
  applied: 0,
  learning_over: 0,
  too_old: 0,
  too_far_future: 0,
};

async function offers(store: Store): Promise<StoreStats["offers"]> {
  return (await store.stats()).offers;
}

/** Each bucket's value at `at`, keyed `row:col`: states that differ only in when they are stamped compare equal. */
async function valuesAt(ns: StoreNamespace, seed: bigint, at: number, rate: number) {
  const values = new Map<string, number>();
  for (const b of await ns.getSeed(seed)) {
    values.set(`${b.rowId}:${b.colId}`, decayed(b.prob, b.lastUpdateTimeMs, at, rate));
  }
  return values;
}

// Good buckets, then the bad one last: none of the good ones may be applied.
function withBadLast(bad: Partial<StateOffer["buckets"][number]>): StateOffer {
  const batch = offer(seed0, [
    [0, 0, 0.9, t0],
    [0, 1, 0.5, t0],
    [3, 7, 0.5, t0],
    [0, 2, 0.5, t0],
  ]);
  Object.assign(batch.buckets[3] ?? {}, bad);
  return batch;
}

export function describeOffers(ctx: ConformanceContext): void {
  describe("merging offers (learning mode, applyOffer)", () => {
    test("an offer into an empty seed creates its buckets as offered and lists them", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda });
      const result = await store.applyOffer(
        offer(seed0, [
          [0, 1, 0.25, t0],
          [2, 3, 0.75, t0 - 20_000],
          [255, 2 ** 24 - 1, 1, t0 + 5],
        ]),
      );
      const expected: BucketState[] = [
        { rowId: 0, colId: 1, prob: 0.25, lastUpdateTimeMs: t0 },
        { rowId: 2, colId: 3, prob: 0.75, lastUpdateTimeMs: t0 - 20_000 },
        { rowId: 255, colId: 2 ** 24 - 1, prob: 1, lastUpdateTimeMs: t0 + 5 },
      ];
      expect(result.status).toBe("applied");
      expect(sorted(result.buckets)).toEqual(expected);
      expect(sorted(await store.getSeed(seed0))).toEqual(expected);
      expect(await store.stats()).toMatchObject({
        seeds: 1,
        buckets: 3,
        offers: { ...noOffers, applied: 1 },
      });
    });

    test("a bucket offered twice in one offer is listed once, with the larger value", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const { buckets } = await store.applyOffer(
        offer(seed0, [
          [0, 0, 0.2, t0],
          [0, 0, 0.4, t0],
          [0, 0, 0.3, t0],
        ]),
      );
      expect(buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.4, lastUpdateTimeMs: t0 }]);
      expect(await store.getSeed(seed0)).toEqual(buckets);
    });

    test("an offer higher than the stored value raises it; a lower one changes nothing", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.5, t0],
          [0, 1, 0.5, t0],
        ]),
      );
      const result = await store.applyOffer(
        offer(seed0, [
          [0, 0, 0.7, t0],
          [0, 1, 0.3, t0],
        ]),
      );
      expect(result).toEqual({
        status: "applied",
        buckets: [{ rowId: 0, colId: 0, prob: 0.7, lastUpdateTimeMs: t0 }],
      });
      expect(sorted(await store.getSeed(seed0))).toEqual([
        { rowId: 0, colId: 0, prob: 0.7, lastUpdateTimeMs: t0 },
        { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 },
      ]);
      const lower = await store.applyOffer(offer(seed0, [[0, 0, 0.6, t0]]));
      expect(lower).toEqual({ status: "applied", buckets: [] });
      expect((await store.getSeed(seed0)).find((b) => b.colId === 0)?.prob).toBe(0.7);
    });

    describe("the two values are compared at the later of their times", () => {
      // Stored 0.5 as of t0 + 30 s; the clock skew lets timestamps that far ahead stand.
      const stamped = t0 + 30_000;
      const make = async () => {
        const { store } = await ctx.make({ decayRatePerSecond: lambda, maxClockSkewMs: 60_000 });
        await store.applyDelta(seed0, 0, 0, 0.5, stamped);
        return store;
      };

      test("an older, larger offer that has decayed below the stored value does not raise it", async () => {
        const store = await make();
        // 0.6 · e^(−0.01 · 30) ≈ 0.444 < 0.5 at the stored time.
        expect(decayed(0.6, t0, stamped)).toBeLessThan(0.5);
        const result = await store.applyOffer(offer(seed0, [[0, 0, 0.6, t0]]));
        expect(result).toEqual({ status: "applied", buckets: [] });
        expect(await store.getSeed(seed0)).toEqual([
          { rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: stamped },
        ]);
      });

      test("an older offer still above the stored value at its time raises it, stamped that time", async () => {
        const store = await make();
        // 0.6 · e^(−0.01 · 10) ≈ 0.543 > 0.5.
        const { buckets } = await store.applyOffer(offer(seed0, [[0, 0, 0.6, t0 + 20_000]]));
        expect(buckets).toHaveLength(1);
        expect(buckets[0]?.prob).toBeCloseTo(decayed(0.6, t0 + 20_000, stamped), 12);
        expect(buckets[0]?.lastUpdateTimeMs).toBe(stamped);
        expect(await store.getSeed(seed0)).toEqual(buckets);
      });

      test("a newer offer above the decayed stored value is kept as offered", async () => {
        const { store } = await ctx.make({ decayRatePerSecond: lambda, maxClockSkewMs: 60_000 });
        await store.applyDelta(seed0, 0, 0, 0.5, t0);
        // The stored 0.5 is worth 0.5 · e^(−0.3) ≈ 0.370 at t0 + 30 s.
        const { buckets } = await store.applyOffer(offer(seed0, [[0, 0, 0.45, stamped]]));
        expect(buckets).toHaveLength(1);
        expect(buckets[0]?.prob).toBeCloseTo(0.45, 12);
        expect(buckets[0]?.lastUpdateTimeMs).toBe(stamped);
      });

      test("a newer offer below the decayed stored value leaves the bucket as it was, unstamped", async () => {
        const { store } = await ctx.make({ decayRatePerSecond: lambda, maxClockSkewMs: 60_000 });
        await store.applyDelta(seed0, 0, 0, 0.5, t0);
        const result = await store.applyOffer(offer(seed0, [[0, 0, 0.3, stamped]]));
        expect(result).toEqual({ status: "applied", buckets: [] });
        expect(await store.getSeed(seed0)).toEqual([
          { rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 },
        ]);
      });
    });

    test("an offer never sums: offering a bucket's current value leaves it", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyDelta(seed0, 1, 2, 0.3, t0);
      const before = await store.getSeed(seed0);
      expect(await store.applyOffer(offer(seed0, [[1, 2, 0.3, t0]]))).toEqual({
        status: "applied",
        buckets: [],
      });
      // The same value stamped later is worth no more (decay off): still left as it was.
      expect((await store.applyOffer(offer(seed0, [[1, 2, 0.3, t0 + 10]]))).buckets).toEqual([]);
      expect(await store.getSeed(seed0)).toEqual(before);
    });

    test("the same offer twice changes nothing the second time", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda });
      const once = (await ctx.make({ decayRatePerSecond: lambda })).store;
      const view = offer(seed0, [
        [0, 0, 0.4, t0],
        [0, 1, 0.2, t0 - 5_000],
        [1, 0, 0.9, t0 - 1_000],
      ]);
      await store.applyDelta(seed0, 0, 1, 0.3, t0);
      await once.applyDelta(seed0, 0, 1, 0.3, t0);
      const first = await store.applyOffer(view);
      expect(sorted(first.buckets).map((b) => [b.rowId, b.colId])).toEqual([
        [0, 0],
        [1, 0],
      ]);
      expect(await store.applyOffer(view)).toEqual({ status: "applied", buckets: [] });
      await once.applyOffer(view);
      expect(sorted(await store.getSeed(seed0))).toEqual(sorted(await once.getSeed(seed0)));
      // Counted per offer, whether or not it changed anything.
      expect(await offers(store)).toEqual({ ...noOffers, applied: 2 });
    });

    test("a probability of 0 creates nothing; an offer of no buckets is applied", async () => {
      const { store } = await ctx.make();
      expect(await store.applyOffer(offer(seed0, [[0, 0, 0, t0]]))).toEqual({
        status: "applied",
        buckets: [],
      });
      expect(await store.applyOffer(offer(seed0, []))).toEqual({ status: "applied", buckets: [] });
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({
        seeds: 0,
        buckets: 0,
        offers: { ...noOffers, applied: 2 },
      });
    });

    test("a raised bucket is a bucket like any other: later deltas add to it", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda });
      await store.applyOffer(offer(seed0, [[4, 5, 0.4, t0]]));
      const { buckets } = await store.applyUpdate(update(seed0, [[4, 5, 0.1, t0 + 10_000]]));
      expect(buckets).toHaveLength(1);
      expect(buckets[0]?.prob).toBeCloseTo(decayed(0.4, t0, t0 + 10_000) + 0.1, 12);
      expect(buckets[0]?.lastUpdateTimeMs).toBe(t0 + 10_000);
      const { bucket } = await store.applyDelta(seed0, 4, 5, -1, t0 + 10_000);
      expect(bucket?.prob).toBe(0);
      expect(await store.getSeed(seed0)).toEqual([]);
    });

    test("uint64 fields given as integer numbers merge exactly as bigints do", async () => {
      const asBigints = offer(seed0, [
        [1, 7, 0.25, t0],
        [3, 255, 0.125, t0 + 5],
      ]);
      const asNumbers: StateOfferInput = {
        seed: seed0,
        buckets: asBigints.buckets.map((b) => ({
          rowId: Number(b.rowId),
          colId: Number(b.colId),
          prob: b.prob,
          lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
        })),
      };
      const [a, b] = [(await ctx.make()).store, (await ctx.make()).store];
      expect(await b.applyOffer(asNumbers)).toEqual(await a.applyOffer(asBigints));
      expect(await b.getSeed(seed0)).toEqual(await a.getSeed(seed0));
    });

    test("timestamps beyond now + maxClockSkewMs are clamped to it", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda, maxClockSkewMs: 1_000 });
      await store.applyDelta(seed0, 0, 2, 0.5, t0);
      const { buckets } = await store.applyOffer(
        offer(seed0, [
          [0, 0, 0.5, t0 + 1_000],
          [0, 1, 0.5, t0 + 60_000],
          [0, 2, 0.6, t0 + 60_000],
        ]),
      );
      // The clamped value is the one offered, stamped at the limit, not decayed.
      expect(sorted(buckets)).toEqual([
        { rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 + 1_000 },
        { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 + 1_000 },
        { rowId: 0, colId: 2, prob: 0.6, lastUpdateTimeMs: t0 + 1_000 },
      ]);
      expect(sorted(await store.getSeed(seed0))).toEqual(sorted(buckets));
    });

    test("namespaces isolate offers", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.namespace("b").applyDelta(seed0, 0, 0, 0.9, t0);
      const a = await store.namespace("a").applyOffer(offer(seed0, [[0, 0, 0.5, t0]]));
      expect(a.buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 }]);
      // "b" holds more, so the same offer leaves it; the default namespace starts empty.
      expect(
        (await store.namespace("b").applyOffer(offer(seed0, [[0, 0, 0.5, t0]]))).buckets,
      ).toEqual([]);
      expect(await store.getSeed(seed0)).toEqual([]);
      expect((await store.applyOffer(offer(seed0, [[0, 0, 0.25, t0]]))).buckets).toHaveLength(1);
      expect((await store.namespace("a").getSeed(seed0))[0]?.prob).toBe(0.5);
      expect((await store.namespace("b").getSeed(seed0))[0]?.prob).toBe(0.9);
      expect((await store.getSeed(seed0))[0]?.prob).toBe(0.25);
      expect(await store.namespace("c").getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({ namespaces: 3, seeds: 3, buckets: 3 });
    });
  });

  describe("the learning period and the live range", () => {
    test("offers are applied while the epoch is no older than learningPeriodMs, then refused and counted", async () => {
      const { store, clock } = await ctx.make({ decayRatePerSecond: 0, learningPeriodMs: 1_000 });
      expect((await store.applyOffer(offer(seed0, [[0, 0, 0.5, t0]]))).status).toBe("applied");
      clock.nowMs = t0 + 999;
      expect((await store.applyOffer(offer(seed0, [[0, 1, 0.5, t0]]))).status).toBe("applied");
      clock.nowMs = t0 + 1_001;
      const before = sorted(await store.getSeed(seed0));
      const refused = await store.applyOffer(
        offer(seed0, [
          [0, 0, 0.9, t0],
          [0, 2, 0.5, t0],
          [5, 5, 0.5, t0],
        ]),
      );
      expect(refused).toEqual({ status: "learning_over", buckets: [] });
      expect(sorted(await store.getSeed(seed0))).toEqual(before);
      expect(await store.namespace("other").applyOffer(offer(seed0, [[0, 0, 0.5, t0]]))).toEqual({
        status: "learning_over",
        buckets: [],
      });
      expect(await store.namespace("other").getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({
        namespaces: 1,
        buckets: 2,
        offers: { ...noOffers, applied: 2, learning_over: 2 },
      });
      // Updates go on as ever.
      expect((await store.applyUpdate(update(seed0, [[0, 2, 0.1, t0]]))).status).toBe("applied");
    });

    test("offers for seeds behind the eviction horizon are dropped and counted", async () => {
      const { store, clock } = await ctx.make({ learningPeriodMs: 10 * windowMs });
      clock.nowMs = t0 + 3 * windowMs;
      const result = await store.applyOffer(
        offer(seed0, [
          [0, 0, 0.5, t0],
          [0, 1, 0.5, t0],
        ]),
      );
      expect(result).toEqual({ status: "too_old", buckets: [] });
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({
        seeds: 0,
        buckets: 0,
        offers: { ...noOffers, too_old: 1 },
      });
    });

    test("offers for seeds more than maxFutureWindows ahead are dropped and counted", async () => {
      const { store } = await ctx.make({ maxFutureWindows: 2 });
      expect((await store.applyOffer(offer(seedAt(2), [[0, 0, 0.5, t0]]))).status).toBe("applied");
      const result = await store.applyOffer(
        offer(seedAt(3), [
          [0, 0, 0.5, t0],
          [0, 1, 0.5, t0],
        ]),
      );
      expect(result).toEqual({ status: "too_far_future", buckets: [] });
      expect(await store.getSeed(seedAt(3))).toEqual([]);
      expect(await store.stats()).toMatchObject({
        seeds: 1,
        offers: { ...noOffers, applied: 1, too_far_future: 1 },
      });
    });
  });

  describe("a bad offer is refused whole, naming the field", () => {
    test.each([
      ["a NaN probability", { prob: Number.NaN }, "invalid_argument", "buckets[3].prob"],
      ["an infinite probability", { prob: Infinity }, "invalid_argument", "buckets[3].prob"],
      ["a probability above 1", { prob: 1.0001 }, "out_of_range", "buckets[3].prob"],
      ["a negative probability", { prob: -0.1 }, "out_of_range", "buckets[3].prob"],
      [
        "a probability that is not a number",
        { prob: "0.5" as unknown as number },
        "invalid_argument",
        "buckets[3].prob",
      ],
      ["a negative row", { rowId: -1n }, "invalid_argument", "buckets[3].row_id"],
      ["a row at maxRows", { rowId: 256n }, "out_of_range", "buckets[3].row_id"],
      ["a column at maxCols", { colId: 2n ** 24n }, "out_of_range", "buckets[3].col_id"],
      [
        "a column that is neither a bigint nor a number",
        { colId: "3" as unknown as bigint },
        "invalid_argument",
        "buckets[3].col_id",
      ],
      [
        "a fractional column number",
        { colId: 1.5 as unknown as bigint },
        "invalid_argument",
        "buckets[3].col_id",
      ],
      [
        "a negative timestamp number",
        { lastUpdateTimeMs: -1 as unknown as bigint },
        "invalid_argument",
        "buckets[3].last_update_time_ms",
      ],
      [
        "a timestamp of 2^53",
        { lastUpdateTimeMs: 2n ** 53n },
        "out_of_range",
        "buckets[3].last_update_time_ms",
      ],
    ] as const)("%s", async (_, bad, code, field) => {
      const { store } = await ctx.make();
      await store.applyDelta(seed0, 0, 0, 0.2, t0);
      const before = await store.getSeed(seed0);
      await expectStoreError(() => store.applyOffer(withBadLast(bad)), code, field);
      expect(await store.getSeed(seed0)).toEqual(before);
      expect(await store.stats()).toMatchObject({ seeds: 1, buckets: 1, offers: noOffers });
    });

    test("a bad first bucket names index 0", async () => {
      const { store } = await ctx.make();
      const bad = offer(seed0, [
        [0, 0, 2, t0],
        [0, 1, 0.5, t0],
      ]);
      await expectStoreError(() => store.applyOffer(bad), "out_of_range", "buckets[0].prob");
      expect(await store.getSeed(seed0)).toEqual([]);
    });

    test("a bucket that is not an object is refused", async () => {
      const { store } = await ctx.make();
      const bad = offer(seed0, [[0, 0, 0.5, t0]]);
      (bad.buckets as unknown[]).push(null);
      await expectStoreError(() => store.applyOffer(bad), "invalid_argument", "buckets[1]");
      expect(await store.getSeed(seed0)).toEqual([]);
    });

    test("a seed that is not a window start, past 2^64 - 1 or below 0 is refused", async () => {
      const { store } = await ctx.make();
      const error = await expectStoreError(
        () => store.applyOffer(offer(seed0 + 1n, [[0, 0, 0.5, t0]])),
        "invalid_argument",
        "seed",
      );
      expect(error.message).toMatch(/windowMs 300000/);
      await expectStoreError(() => store.applyOffer(offer(2n ** 64n, [])), "out_of_range", "seed");
      await expectStoreError(
        () => store.applyOffer(offer(-300_000n, [])),
        "invalid_argument",
        "seed",
      );
      expect(await store.stats()).toMatchObject({ seeds: 0, offers: noOffers });
    });

    test("something that is not a StateOffer is refused", async () => {
      const { store } = await ctx.make();
      await expectStoreError(
        () => store.applyOffer(null as unknown as StateOfferInput),
        "invalid_argument",
        "offer",
      );
      const noBuckets = { ...create(StateOfferSchema, { seed: seed0 }), buckets: undefined };
      await expectStoreError(
        () => store.applyOffer(noBuckets as unknown as StateOfferInput),
        "invalid_argument",
        "buckets",
      );
      expect(await offers(store)).toEqual(noOffers);
    });
  });

  // Exact limits only (ConformanceOptions.exactLimits).
  if (ctx.exactLimits)
    describe("limits apply to offers as to updates", () => {
      test("an offer that would leave its seed holding more than maxBucketsPerSeed is refused whole", async () => {
        const { store } = await ctx.make({ maxBucketsPerSeed: 3, decayRatePerSecond: 0 });
        await store.applyUpdate(
          update(seed0, [
            [0, 0, 0.1, t0],
            [0, 1, 0.1, t0],
          ]),
        );
        const before = sorted(await store.getSeed(seed0));
        const error = await expectStoreError(
          () =>
            store.applyOffer(
              offer(seed0, [
                [0, 1, 0.9, t0],
                [0, 2, 0.1, t0],
                [0, 3, 0.1, t0],
              ]),
            ),
          "limit_exceeded",
          "seed",
        );
        expect(error.message).toMatch(/maxBucketsPerSeed \(3\)/);
        expect(sorted(await store.getSeed(seed0))).toEqual(before);
        expect(await store.stats()).toMatchObject({ buckets: 2, offers: noOffers });
        // Raising held buckets, offering 0 and one new bucket stay within the limit.
        const within = await store.applyOffer(
          offer(seed0, [
            [0, 0, 0.9, t0],
            [0, 1, 0.1, t0],
            [0, 7, 0, t0],
            [0, 2, 0.1, t0],
          ]),
        );
        expect(within.status).toBe("applied");
        expect(sorted(within.buckets).map((b) => b.colId)).toEqual([0, 2]);
        expect((await store.stats()).buckets).toBe(3);
      });

      test("an offer that would add a live seed past maxSeedsPerNamespace is refused; one of zeros is not", async () => {
        const { store } = await ctx.make({ maxSeedsPerNamespace: 1 });
        await store.applyOffer(offer(seedAt(0), [[0, 0, 0.1, t0]]));
        await expectStoreError(
          () => store.applyOffer(offer(seedAt(1), [[0, 0, 0.1, t0]])),
          "limit_exceeded",
          "seed",
        );
        expect(await store.getSeed(seedAt(1))).toEqual([]);
        expect((await store.applyOffer(offer(seedAt(1), [[0, 0, 0, t0]]))).status).toBe("applied");
        expect((await store.applyOffer(offer(seedAt(0), [[0, 1, 0.1, t0]]))).status).toBe(
          "applied",
        );
        expect(await store.stats()).toMatchObject({ seeds: 1, buckets: 2 });
      });

      test("an offer that would put buckets into one namespace too many is refused", async () => {
        const { store } = await ctx.make({ maxNamespaces: 1 });
        await store.namespace("a").applyOffer(offer(seed0, [[0, 0, 0.1, t0]]));
        await expectStoreError(
          () => store.namespace("b").applyOffer(offer(seed0, [[0, 0, 0.1, t0]])),
          "limit_exceeded",
          "seed",
        );
        expect(await store.namespace("b").getSeed(seed0)).toEqual([]);
        expect(await store.stats()).toMatchObject({ namespaces: 1, buckets: 1 });
      });
    });

  describe("epochs", () => {
    test("a store with epochs has a current one once ready, with an id and a start", async () => {
      const { store } = await ctx.make();
      const epochs = store.epochs;
      if (epochs === undefined) return;
      const epoch = epochs.current;
      expect(epoch).toBeDefined();
      expect(typeof epoch?.id).toBe("string");
      expect(epoch?.id.length).toBeGreaterThan(0);
      expect(Number.isFinite(epoch?.startedAtMs)).toBe(true);
      expect(typeof epochs.onEpochChange).toBe("function");
      // Work on the store does not change its epoch.
      await store.applyOffer(offer(seed0, [[0, 0, 0.5, t0]]));
      await store.applyUpdate(update(seed0, [[0, 0, 0.1, t0]]));
      expect(store.epochs?.current?.id).toBe(epoch?.id);
      // Another store's state is another epoch.
      const other = (await ctx.make()).store;
      if (other.epochs?.current !== undefined) {
        expect(other.epochs.current.id).not.toBe(epoch?.id);
      }
    });
  });

  describe("offer properties", () => {
    const rate = fc.double({ min: 0, max: 0.05, noNaN: true });
    const bucket = fc.tuple(
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 1_000 }).map((n) => n / 1_000),
      fc.integer({ min: 0, max: 10_000 }).map((dt) => t0 + dt),
    );
    const view = fc.array(bucket, { maxLength: 8 });
    const latest = t0 + 10_000;

    test("overlapping offers in either order leave the same state: each bucket's largest offer", async () => {
      await fc.assert(
        fc
          .asyncProperty(rate, view, view, async (lambda, a, b) => {
            const { store } = await ctx.make({ decayRatePerSecond: lambda });
            const results: Map<string, number>[] = [];
            for (const [i, order] of [
              [a, b],
              [b, a],
              [a, b, a, b],
            ].entries()) {
              const ns = store.namespace(`order-${i}`);
              for (const buckets of order) {
                expect((await ns.applyOffer(offer(seed0, buckets as BucketTuple[]))).status).toBe(
                  "applied",
                );
              }
              results.push(await valuesAt(ns, seed0, latest, lambda));
            }
            // The closed form: each bucket's largest offer, all decayed to one time.
            const expected = new Map<string, number>();
            for (const [row, col, q, u] of [...a, ...b]) {
              if (q === 0) continue;
              const key = `${row}:${col}`;
              expected.set(key, Math.max(expected.get(key) ?? 0, decayed(q, u, latest, lambda)));
            }
            for (const values of results) {
              expect([...values.keys()].sort()).toEqual([...expected.keys()].sort());
              for (const [key, value] of expected) expect(values.get(key)).toBeCloseTo(value, 12);
            }
          })
          .afterEach(() => ctx.disposeAll()),
        { numRuns: ctx.propertyRuns },
      );
    });
  });
}
