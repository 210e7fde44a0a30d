// Limits on what a client can make the store hold (docs/design.md §4:
// nothing a client sends may grow memory without bound): an update past
// maxSeedsPerNamespace, maxBucketsPerSeed or maxNamespaces is refused
// whole, naming the option, and counted.

import type { Store, StoreStats } from "@fair/state-store";
import { describe, expect, test } from "vitest";
import { expectStoreError, seed0, sorted, t0, update, windowMs } from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

const seedAt = (windows: number) => seed0 + BigInt(windows * windowMs);

async function refusals(store: Store): Promise<StoreStats["limitRefusals"]> {
  return (await store.stats()).limitRefusals;
}

export function describeLimits(ctx: ConformanceContext): void {
  describe("maxSeedsPerNamespace", () => {
    test("an update that would add a live seed past the limit is refused whole, naming the option", async () => {
      const { store } = await ctx.make({ maxSeedsPerNamespace: 2 });
      await store.applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      await store.applyUpdate(update(seedAt(1), [[0, 0, 0.1, t0]]));
      const error = await expectStoreError(
        () =>
          store.applyUpdate(
            update(seedAt(2), [
              [0, 0, 0.1, t0],
              [1, 5, 0.2, t0],
            ]),
          ),
        "limit_exceeded",
        "seed",
      );
      expect(error.message).toMatch(/maxSeedsPerNamespace \(2\)/);
      await expectStoreError(
        () => store.applyDelta(seedAt(2), 0, 0, 0.1, t0),
        "limit_exceeded",
        "seed",
      );
      expect(await store.getSeed(seedAt(2))).toEqual([]);
      expect(await store.stats()).toMatchObject({
        seeds: 2,
        buckets: 2,
        appliedDeltas: 2,
        droppedDeltas: { too_old: 0, too_far_future: 0 },
        limitRefusals: { max_seeds_per_namespace: 2, max_buckets_per_seed: 0, max_namespaces: 0 },
      });
    });

    test("seeds already held still take updates, and other namespaces have limits of their own", async () => {
      const { store } = await ctx.make({ maxSeedsPerNamespace: 1 });
      await store.applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      expect((await store.applyUpdate(update(seedAt(0), [[0, 1, 0.1, t0]]))).status).toBe(
        "applied",
      );
      const other = store.namespace("other");
      expect((await other.applyUpdate(update(seedAt(1), [[0, 0, 0.1, t0]]))).status).toBe(
        "applied",
      );
      expect(await store.getSeed(seedAt(0))).toHaveLength(2);
      expect(await other.getSeed(seedAt(1))).toHaveLength(1);
      expect((await refusals(store)).max_seeds_per_namespace).toBe(0);
    });

    test("an update that leaves a new seed empty adds no seed, so the limit does not refuse it", async () => {
      const { store } = await ctx.make({ maxSeedsPerNamespace: 1 });
      await store.applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      const result = await store.applyUpdate(update(seedAt(1), [[0, 0, -0.1, t0]]));
      expect(result).toEqual({ status: "applied", buckets: [], clampedTimestamps: 0 });
      expect((await store.stats()).seeds).toBe(1);
    });

    test("a seed behind the eviction horizon no longer counts, evicted yet or not", async () => {
      const { store, clock } = await ctx.make({
        maxSeedsPerNamespace: 2,
        seedEvictionTtlMs: windowMs,
      });
      await store.applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      await store.applyUpdate(update(seedAt(1), [[0, 0, 0.1, t0]]));
      // seedAt(0) leaves the horizon; no eviction has run.
      clock.nowMs = Number(seedAt(1)) + 1_000;
      const result = await store.applyUpdate(update(seedAt(2), [[0, 0, 0.1, clock.nowMs]]));
      expect(result.status).toBe("applied");
      expect((await refusals(store)).max_seeds_per_namespace).toBe(0);
    });
  });

  describe("maxBucketsPerSeed", () => {
    test("an update that would leave its seed holding more buckets is refused whole, naming the option", async () => {
      const { store } = await ctx.make({ maxBucketsPerSeed: 3 });
      await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0],
          [0, 1, 0.1, t0],
        ]),
      );
      const error = await expectStoreError(
        () =>
          store.applyUpdate(
            update(seed0, [
              [0, 1, 0.2, t0],
              [0, 2, 0.1, t0],
              [0, 3, 0.1, t0],
            ]),
          ),
        "limit_exceeded",
        "seed",
      );
      expect(error.message).toMatch(/would hold 4 buckets, more than maxBucketsPerSeed \(3\)/);
      expect(sorted(await store.getSeed(seed0))).toEqual([
        { rowId: 0, colId: 0, prob: 0.1, lastUpdateTimeMs: t0 },
        { rowId: 0, colId: 1, prob: 0.1, lastUpdateTimeMs: t0 },
      ]);
      expect(await store.stats()).toMatchObject({
        buckets: 2,
        appliedDeltas: 2,
        limitRefusals: { max_seeds_per_namespace: 0, max_buckets_per_seed: 1 },
      });
    });

    test("the count is of the buckets held afterwards: repeats count once, a bucket falling to 0 makes room", async () => {
      const { store } = await ctx.make({ maxBucketsPerSeed: 2 });
      await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0],
          [0, 0, 0.1, t0],
          [0, 1, 0.1, t0],
          [0, 1, 0.1, t0],
        ]),
      );
      // Bucket 0 falls to 0 as bucket 2 appears: still two held.
      const result = await store.applyUpdate(
        update(seed0, [
          [0, 2, 0.3, t0],
          [0, 0, -1, t0],
        ]),
      );
      expect(result.status).toBe("applied");
      expect(sorted(await store.getSeed(seed0)).map((b) => b.colId)).toEqual([1, 2]);
      // Successes on buckets not held add nothing either.
      expect((await store.applyUpdate(update(seed0, [[0, 7, -0.1, t0]]))).status).toBe("applied");
      expect((await store.applyDelta(seed0, 0, 8, -0.1, t0)).status).toBe("applied");
      // A failure on a held bucket is fine; on a new one it is refused.
      expect((await store.applyDelta(seed0, 0, 1, 0.1, t0)).status).toBe("applied");
      await expectStoreError(
        () => store.applyDelta(seed0, 0, 9, 0.1, t0),
        "limit_exceeded",
        "seed",
      );
      expect((await store.stats()).buckets).toBe(2);
      expect((await refusals(store)).max_buckets_per_seed).toBe(1);
    });

    test("a new seed's first update over the limit is refused and leaves no seed behind", async () => {
      const { store } = await ctx.make({ maxBucketsPerSeed: 2 });
      await expectStoreError(
        () =>
          store.applyUpdate(
            update(seed0, [
              [0, 0, 0.1, t0],
              [0, 1, 0.1, t0],
              [0, 2, 0.1, t0],
            ]),
          ),
        "limit_exceeded",
        "seed",
      );
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({ seeds: 0, buckets: 0, appliedDeltas: 0 });
      // The limit is per seed: the next window's seed has room of its own.
      await store.applyUpdate(
        update(seed0, [
          [0, 0, 0.1, t0],
          [0, 1, 0.1, t0],
        ]),
      );
      const next = await store.applyUpdate(
        update(seedAt(1), [
          [0, 0, 0.1, t0],
          [0, 1, 0.1, t0],
        ]),
      );
      expect(next.status).toBe("applied");
    });
  });

  describe("maxNamespaces", () => {
    test("an update that would put the first bucket into one namespace too many is refused whole, naming the option", async () => {
      const { store } = await ctx.make({ maxNamespaces: 2 });
      await store.applyUpdate(update(seed0, [[0, 0, 0.1, t0]]));
      await store.namespace("a").applyUpdate(update(seedAt(1), [[0, 0, 0.1, t0]]));
      const extra = store.namespace("b");
      const error = await expectStoreError(
        () =>
          extra.applyUpdate(
            update(seed0, [
              [0, 0, 0.1, t0],
              [1, 5, 0.2, t0],
            ]),
          ),
        "limit_exceeded",
        "seed",
      );
      expect(error.message).toMatch(/maxNamespaces \(2\)/);
      expect(error.message).toContain('"b"');
      await expectStoreError(
        () => extra.applyDelta(seed0, 0, 0, 0.1, t0),
        "limit_exceeded",
        "seed",
      );
      expect(await extra.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({
        namespaces: 2,
        seeds: 2,
        buckets: 2,
        appliedDeltas: 2,
        limitRefusals: { max_seeds_per_namespace: 0, max_buckets_per_seed: 0, max_namespaces: 2 },
      });
    });

    test("namespaces holding buckets take updates and new seeds; one left empty by its update is no namespace", async () => {
      const { store } = await ctx.make({ maxNamespaces: 1 });
      const only = store.namespace("only");
      await only.applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      expect((await only.applyUpdate(update(seedAt(1), [[0, 1, 0.1, t0]]))).status).toBe("applied");
      expect((await only.applyDelta(seedAt(0), 0, 2, 0.1, t0)).status).toBe("applied");
      const result = await store.namespace("other").applyUpdate(update(seed0, [[0, 0, -0.1, t0]]));
      expect(result).toEqual({ status: "applied", buckets: [], clampedTimestamps: 0 });
      expect(await store.stats()).toMatchObject({ namespaces: 1, seeds: 2, buckets: 3 });
      expect((await refusals(store)).max_namespaces).toBe(0);
    });

    test("a namespace whose buckets all fell to 0 frees its place", async () => {
      const { store } = await ctx.make({ maxNamespaces: 1 });
      await store.namespace("a").applyUpdate(update(seed0, [[0, 0, 0.1, t0]]));
      await expectStoreError(
        () => store.namespace("b").applyDelta(seed0, 0, 0, 0.1, t0),
        "limit_exceeded",
        "seed",
      );
      await store.namespace("a").applyUpdate(update(seed0, [[0, 0, -1, t0]]));
      expect((await store.namespace("b").applyDelta(seed0, 0, 0, 0.1, t0)).status).toBe("applied");
      expect((await store.stats()).namespaces).toBe(1);
    });

    test("a namespace whose seeds left the horizon frees its place, evicted yet or not", async () => {
      const { store, clock } = await ctx.make({ maxNamespaces: 2, seedEvictionTtlMs: windowMs });
      await store.namespace("a").applyUpdate(update(seedAt(0), [[0, 0, 0.1, t0]]));
      await store.namespace("b").applyUpdate(update(seedAt(1), [[0, 0, 0.1, t0]]));
      // seedAt(0) leaves the horizon; no eviction has run: "a" holds no live seed.
      clock.nowMs = Number(seedAt(1)) + 1_000;
      const c = await store
        .namespace("c")
        .applyUpdate(update(seedAt(1), [[0, 0, 0.1, clock.nowMs]]));
      expect(c.status).toBe("applied");
      // "a" coming back is a new namespace again, and now one too many.
      await expectStoreError(
        () => store.namespace("a").applyDelta(seedAt(2), 0, 0, 0.1, clock.nowMs),
        "limit_exceeded",
        "seed",
      );
      // Evicted, "b" frees its place.
      await store.evictBefore(seedAt(2));
      expect(
        (await store.namespace("a").applyDelta(seedAt(2), 0, 0, 0.1, clock.nowMs)).status,
      ).toBe("applied");
      expect((await refusals(store)).max_namespaces).toBe(1);
    });
  });
}
