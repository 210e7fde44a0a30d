// The aggregation contract (docs/design.md §3–4), one test per rule, on any store.
import { describe, expect, test } from "vitest";
import { seed0, sorted, t0, update, windowMs } from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

const lambda = 0.01;

export function describeSemantics(ctx: ConformanceContext): void {
  describe("applying deltas (docs/design.md §3)", () => {
    test("an in-order delta decays the stored probability to its time, then adds", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda });
      await store.applyDelta(seed0, 1, 2, 0.5, t0);
      const { bucket } = await store.applyDelta(seed0, 1, 2, 0.1, t0 + 30_000);
      expect(bucket?.prob).toBeCloseTo(0.5 * Math.exp(-lambda * 30) + 0.1, 12);
      expect(bucket?.lastUpdateTimeMs).toBe(t0 + 30_000);
    });

    test("a late delta is decayed to the bucket's time and the timestamp stays", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: lambda });
      await store.applyDelta(seed0, 1, 2, 0.5, t0 + 30_000);
      const { bucket } = await store.applyDelta(seed0, 1, 2, 0.1, t0);
      expect(bucket?.prob).toBeCloseTo(0.5 + 0.1 * Math.exp(-lambda * 30), 12);
      expect(bucket?.lastUpdateTimeMs).toBe(t0 + 30_000);
    });

    test("with decay off it is a plain sum, clamped, with the largest timestamp", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyDelta(seed0, 0, 0, 0.25, t0 + 10);
      await store.applyDelta(seed0, 0, 0, 0.5, t0);
      expect(await store.getSeed(seed0)).toEqual([
        { rowId: 0, colId: 0, prob: 0.75, lastUpdateTimeMs: t0 + 10 },
      ]);
      await store.applyDelta(seed0, 0, 0, 0.5, t0 + 5);
      expect((await store.getSeed(seed0))[0]).toEqual({
        rowId: 0,
        colId: 0,
        prob: 1,
        lastUpdateTimeMs: t0 + 10,
      });
    });

    test("probabilities clamp to [0, 1]", async () => {
      const { store } = await ctx.make();
      for (let i = 0; i < 3; i++) await store.applyDelta(seed0, 0, 0, 1, t0);
      expect((await store.getSeed(seed0))[0]?.prob).toBe(1);
      expect((await store.applyDelta(seed0, 0, 0, -1, t0)).bucket?.prob).toBe(0);
    });

    test("a bucket that falls to 0 is reported once with prob 0, then forgotten", async () => {
      const { store } = await ctx.make();
      await store.applyDelta(seed0, 3, 4, 0.2, t0);
      const result = await store.applyUpdate(update(seed0, [[3, 4, -0.5, t0 + 1]]));
      expect(result.buckets).toEqual([{ rowId: 3, colId: 4, prob: 0, lastUpdateTimeMs: t0 + 1 }]);
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({ buckets: 0, seeds: 0 });
    });

    test("a forgotten bucket starts afresh, as the default bucket does", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyDelta(seed0, 3, 4, 0.2, t0 + 50);
      await store.applyDelta(seed0, 3, 4, -0.5, t0 + 60);
      // A success on it changes nothing; a failure stamped earlier is in order.
      expect((await store.applyUpdate(update(seed0, [[3, 4, -0.1, t0]]))).buckets).toEqual([]);
      const { buckets } = await store.applyUpdate(update(seed0, [[3, 4, 0.3, t0]]));
      expect(buckets).toEqual([{ rowId: 3, colId: 4, prob: 0.3, lastUpdateTimeMs: t0 }]);
      expect(await store.getSeed(seed0)).toEqual(buckets);
    });

    test("a success on a default bucket stores nothing and changes nothing", async () => {
      const { store } = await ctx.make();
      const result = await store.applyUpdate(update(seed0, [[0, 7, -0.01, t0]]));
      expect(result).toEqual({ status: "applied", buckets: [], clampedTimestamps: 0 });
      expect(await store.stats()).toMatchObject({ buckets: 0, seeds: 0, appliedDeltas: 1 });
      expect((await store.applyDelta(seed0, 0, 7, -0.01, t0)).bucket).toEqual({
        rowId: 0,
        colId: 7,
        prob: 0,
        lastUpdateTimeMs: t0,
      });
    });

    test("a batch reports each changed bucket once, with its latest value", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const result = await store.applyUpdate(
        update(seed0, [
          [0, 1, 0.1, t0],
          [2, 3, 0.2, t0],
          [0, 1, 0.3, t0 + 5],
          [0, 9, -0.1, t0],
        ]),
      );
      expect(result.status).toBe("applied");
      expect(sorted(result.buckets)).toEqual([
        { rowId: 0, colId: 1, prob: 0.1 + 0.3, lastUpdateTimeMs: t0 + 5 },
        { rowId: 2, colId: 3, prob: 0.2, lastUpdateTimeMs: t0 },
      ]);
    });

    test("several deltas for one bucket in one batch apply in order", async () => {
      // In order the clamp at 1 bites before the subtraction: 1 − 0.5.
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const { buckets } = await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.9, t0],
          [0, 0, 0.9, t0],
          [0, 0, -0.5, t0],
        ]),
      );
      expect(buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 }]);
    });

    test("a bucket that falls to 0 and rises again within a batch is reported once", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyDelta(seed0, 0, 0, 0.2, t0);
      const { buckets } = await store.applyUpdate(
        update(seed0, [
          [0, 0, -0.5, t0 + 1],
          [0, 0, 0.3, t0],
        ]),
      );
      // Once at 0 the bucket is the default one, so the later delta starts afresh.
      expect(buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.3, lastUpdateTimeMs: t0 }]);
      expect(await store.getSeed(seed0)).toEqual(buckets);
    });

    test("the largest ids and the smallest probabilities are kept exactly", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const tiny = Number.MIN_VALUE;
      const third = 1 / 3;
      await store.applyUpdate(
        update(seed0, [
          [255, 2 ** 24 - 1, tiny, t0],
          [0, 0, third, t0 + 7],
        ]),
      );
      expect(sorted(await store.getSeed(seed0))).toEqual([
        { rowId: 0, colId: 0, prob: third, lastUpdateTimeMs: t0 + 7 },
        { rowId: 255, colId: 2 ** 24 - 1, prob: tiny, lastUpdateTimeMs: t0 },
      ]);
    });

    test("a large batch over one row applies in full", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const deltas: [number, number, number, number][] = [];
      for (let col = 0; col < 2_500; col++) deltas.push([7, col, 0.25, t0]);
      for (let col = 0; col < 2_500; col += 2) deltas.push([7, col, -0.25, t0]);
      const { buckets } = await store.applyUpdate(update(seed0, deltas));
      expect(buckets).toHaveLength(2_500);
      const held = await store.getSeed(seed0);
      expect(held).toHaveLength(1_250);
      expect(held.every((b) => b.colId % 2 === 1 && b.prob === 0.25)).toBe(true);
      expect(await store.stats()).toMatchObject({ buckets: 1_250, appliedDeltas: 3_750 });
    });

    test("getSeed of an unknown seed is empty", async () => {
      const { store } = await ctx.make();
      expect(await store.getSeed(seed0 + BigInt(windowMs))).toEqual([]);
    });
  });

  describe("seed windows and clocks (docs/design.md §4)", () => {
    test("deltas for seeds behind the eviction horizon are dropped and counted", async () => {
      const { store, clock } = await ctx.make();
      clock.nowMs = t0 + 3 * windowMs;
      const result = await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0],
          [0, 1, 0.1, t0],
        ]),
      );
      expect(result).toEqual({ status: "too_old", buckets: [], clampedTimestamps: 0 });
      expect(await store.applyDelta(seed0, 0, 0, 0.1, t0)).toEqual({
        status: "too_old",
        bucket: undefined,
        timestampClamped: false,
      });
      expect(await store.stats()).toMatchObject({
        buckets: 0,
        appliedDeltas: 0,
        droppedDeltas: { too_old: 3, too_far_future: 0 },
      });
    });

    test("the current window stays live for its whole length", async () => {
      const { store, clock } = await ctx.make({ seedEvictionTtlMs: windowMs });
      clock.nowMs = Number(seed0) + windowMs - 1;
      expect((await store.applyDelta(seed0, 0, 0, 0.1, t0)).status).toBe("applied");
    });

    test("seeds up to maxFutureWindows ahead are accepted, later ones refused and counted", async () => {
      const { store } = await ctx.make({ maxFutureWindows: 2 });
      const ahead = (windows: number) => seed0 + BigInt(windows * windowMs);
      expect((await store.applyUpdate(update(ahead(2), [[0, 0, 0.1, t0]]))).status).toBe("applied");
      const refused = await store.applyUpdate(
        update(ahead(3), [
          [0, 0, 0.1, t0],
          [0, 1, 0.2, t0],
        ]),
      );
      expect(refused).toEqual({ status: "too_far_future", buckets: [], clampedTimestamps: 0 });
      expect(await store.getSeed(ahead(3))).toEqual([]);
      expect(await store.stats()).toMatchObject({
        seeds: 1,
        droppedDeltas: { too_old: 0, too_far_future: 2 },
      });
    });

    test("timestamps beyond now + maxClockSkewMs are clamped to it and counted", async () => {
      const { store } = await ctx.make({ maxClockSkewMs: 1_000 });
      const result = await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0 + 1_000],
          [0, 1, 0.1, t0 + 60_000],
        ]),
      );
      expect(result.clampedTimestamps).toBe(1);
      expect(sorted(result.buckets).map((b) => b.lastUpdateTimeMs)).toEqual([
        t0 + 1_000,
        t0 + 1_000,
      ]);
      const single = await store.applyDelta(seed0, 0, 2, 0.1, t0 + 5_000);
      expect(single).toMatchObject({
        timestampClamped: true,
        bucket: { lastUpdateTimeMs: t0 + 1_000 },
      });
      expect((await store.stats()).clampedTimestamps).toBe(2);
    });

    test("evictBefore removes older seeds everywhere and drops their late deltas", async () => {
      const { store } = await ctx.make();
      const next = seed0 + BigInt(windowMs);
      await store.applyDelta(seed0, 0, 0, 0.1, t0);
      await store.namespace("a").applyDelta(seed0, 0, 0, 0.1, t0);
      await store.namespace("a").applyDelta(next, 0, 0, 0.1, t0);
      expect(await store.evictBefore(next)).toEqual({ seeds: 2, buckets: 2 });
      expect(await store.stats()).toMatchObject({ namespaces: 1, seeds: 1, evictedSeeds: 2 });
      expect((await store.applyDelta(seed0, 0, 0, 0.1, t0)).status).toBe("too_old");
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.namespace("a").getSeed(next)).toHaveLength(1);
    });
  });

  describe("namespaces", () => {
    test("each namespace is an isolated key space; the store is the empty one", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await store.applyDelta(seed0, 0, 0, 0.1, t0);
      await store.namespace("checkout").applyUpdate(update(seed0, [[0, 0, 0.2, t0]]));
      await store.namespace("search").applyDelta(seed0, 0, 0, 0.3, t0);
      expect(await store.getSeed(seed0)).toEqual([
        { rowId: 0, colId: 0, prob: 0.1, lastUpdateTimeMs: t0 },
      ]);
      expect(await store.namespace("").getSeed(seed0)).toEqual(await store.getSeed(seed0));
      expect((await store.namespace("checkout").getSeed(seed0))[0]?.prob).toBe(0.2);
      expect((await store.namespace("search").getSeed(seed0))[0]?.prob).toBe(0.3);
      expect(await store.namespace("other").getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({ namespaces: 3, seeds: 3, buckets: 3 });
    });

    test("a namespace may hold any characters, and names that look alike stay apart", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const names = ["a:b", "a", "a|b", "{a}", "a b", "ü/€", "a%3Ab"];
      for (const [i, name] of names.entries()) {
        await store.namespace(name).applyDelta(seed0, 0, i, 0.5, t0);
      }
      for (const [i, name] of names.entries()) {
        expect(await store.namespace(name).getSeed(seed0)).toEqual([
          { rowId: 0, colId: i, prob: 0.5, lastUpdateTimeMs: t0 },
        ]);
      }
    });
  });

  describe("stats", () => {
    test("stats are plain numbers, counted per delta", async () => {
      const { store } = await ctx.make();
      await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0],
          [0, 1, -0.1, t0],
        ]),
      );
      expect(await store.stats()).toEqual({
        namespaces: 1,
        seeds: 1,
        buckets: 1,
        appliedDeltas: 2,
        droppedDeltas: { too_old: 0, too_far_future: 0 },
        clampedTimestamps: 0,
        limitRefusals: { max_seeds_per_namespace: 0, max_buckets_per_seed: 0, max_namespaces: 0 },
        evictedSeeds: 0,
        evictedBuckets: 0,
        offers: { applied: 0, learning_over: 0, too_old: 0, too_far_future: 0 },
      });
    });
  });
}
