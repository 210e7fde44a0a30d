import { describe, expect, test } from "vitest";
import { makeStore, seed0, sorted, t0, update, windowMs } from "../test/helpers.js";
import { InMemoryStore, type Store } from "./index.js";

const lambda = 0.01;

describe("applying deltas (DESIGN §3)", () => {
  test("an in-order delta decays the stored probability to its time, then adds", () => {
    const { store } = makeStore({ decayRatePerSecond: lambda });
    store.applyDelta(seed0, 1, 2, 0.5, t0);
    const { bucket } = store.applyDelta(seed0, 1, 2, 0.1, t0 + 30_000);
    expect(bucket?.prob).toBeCloseTo(0.5 * Math.exp(-lambda * 30) + 0.1, 12);
    expect(bucket?.lastUpdateTimeMs).toBe(t0 + 30_000);
  });

  test("a late delta is decayed to the bucket's time and the timestamp stays", () => {
    const { store } = makeStore({ decayRatePerSecond: lambda });
    store.applyDelta(seed0, 1, 2, 0.5, t0 + 30_000);
    const { bucket } = store.applyDelta(seed0, 1, 2, 0.1, t0);
    expect(bucket?.prob).toBeCloseTo(0.5 + 0.1 * Math.exp(-lambda * 30), 12);
    expect(bucket?.lastUpdateTimeMs).toBe(t0 + 30_000);
  });

  test("with decay off it is a plain sum, clamped, with the largest timestamp", () => {
    const { store } = makeStore({ decayRatePerSecond: 0 });
    store.applyDelta(seed0, 0, 0, 0.25, t0 + 10);
    store.applyDelta(seed0, 0, 0, 0.5, t0);
    expect(store.getSeed(seed0)).toEqual([
      { rowId: 0, colId: 0, prob: 0.75, lastUpdateTimeMs: t0 + 10 },
    ]);
    store.applyDelta(seed0, 0, 0, 0.5, t0 + 5);
    expect(store.getSeed(seed0)[0]).toEqual({
      rowId: 0,
      colId: 0,
      prob: 1,
      lastUpdateTimeMs: t0 + 10,
    });
  });

  test("probabilities clamp to [0, 1]", () => {
    const { store } = makeStore();
    for (let i = 0; i < 3; i++) store.applyDelta(seed0, 0, 0, 1, t0);
    expect(store.getSeed(seed0)[0]?.prob).toBe(1);
    expect(store.applyDelta(seed0, 0, 0, -1, t0).bucket?.prob).toBe(0);
  });

  test("a bucket that falls to 0 is reported once with prob 0, then forgotten", () => {
    const { store } = makeStore();
    store.applyDelta(seed0, 3, 4, 0.2, t0);
    const result = store.applyUpdate(update(seed0, [[3, 4, -0.5, t0 + 1]]));
    expect(result.buckets).toEqual([{ rowId: 3, colId: 4, prob: 0, lastUpdateTimeMs: t0 + 1 }]);
    expect(store.getSeed(seed0)).toEqual([]);
    expect(store.stats()).toMatchObject({ buckets: 0, seeds: 0 });
  });

  test("a success on a default bucket stores nothing and changes nothing", () => {
    const { store } = makeStore();
    const result = store.applyUpdate(update(seed0, [[0, 7, -0.01, t0]]));
    expect(result).toEqual({ status: "applied", buckets: [], clampedTimestamps: 0 });
    expect(store.stats()).toMatchObject({ buckets: 0, seeds: 0, appliedDeltas: 1 });
    expect(store.applyDelta(seed0, 0, 7, -0.01, t0).bucket).toEqual({
      rowId: 0,
      colId: 7,
      prob: 0,
      lastUpdateTimeMs: t0,
    });
  });

  test("a batch reports each changed bucket once, with its latest value", () => {
    const { store } = makeStore({ decayRatePerSecond: 0 });
    const result = store.applyUpdate(
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

  test("several deltas for one bucket in one batch apply in order", () => {
    // In order the clamp at 1 bites before the subtraction: 1 − 0.5.
    const { store } = makeStore({ decayRatePerSecond: 0 });
    const { buckets } = store.applyUpdate(
      update(seed0, [
        [0, 0, 0.9, t0],
        [0, 0, 0.9, t0],
        [0, 0, -0.5, t0],
      ]),
    );
    expect(buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 }]);
  });

  test("a bucket that falls to 0 and rises again within a batch is reported once", () => {
    const { store } = makeStore({ decayRatePerSecond: 0 });
    store.applyDelta(seed0, 0, 0, 0.2, t0);
    const { buckets } = store.applyUpdate(
      update(seed0, [
        [0, 0, -0.5, t0 + 1],
        [0, 0, 0.3, t0],
      ]),
    );
    // Once at 0 the bucket is the default one, so the later delta starts afresh.
    expect(buckets).toEqual([{ rowId: 0, colId: 0, prob: 0.3, lastUpdateTimeMs: t0 }]);
    expect(store.getSeed(seed0)).toEqual(buckets);
  });

  test("getSeed of an unknown seed is empty", () => {
    const { store } = makeStore();
    expect(store.getSeed(seed0 + BigInt(windowMs))).toEqual([]);
  });
});

describe("seed windows and clocks (DESIGN §4)", () => {
  test("deltas for seeds behind the eviction horizon are dropped and counted", () => {
    const { store, clock } = makeStore();
    clock.nowMs = t0 + 3 * windowMs;
    const result = store.applyUpdate(
      update(seed0, [
        [0, 0, 0.1, t0],
        [0, 1, 0.1, t0],
      ]),
    );
    expect(result).toEqual({ status: "too_old", buckets: [], clampedTimestamps: 0 });
    expect(store.applyDelta(seed0, 0, 0, 0.1, t0)).toEqual({
      status: "too_old",
      bucket: undefined,
      timestampClamped: false,
    });
    expect(store.stats()).toMatchObject({
      buckets: 0,
      appliedDeltas: 0,
      droppedDeltas: { too_old: 3, too_far_future: 0 },
    });
  });

  test("the current window stays live for its whole length", () => {
    const { store, clock } = makeStore({ seedEvictionTtlMs: windowMs });
    clock.nowMs = Number(seed0) + windowMs - 1;
    expect(store.applyDelta(seed0, 0, 0, 0.1, t0).status).toBe("applied");
  });

  test("seeds up to maxFutureWindows ahead are accepted, later ones refused and counted", () => {
    const { store } = makeStore({ maxFutureWindows: 2 });
    const ahead = (windows: number) => seed0 + BigInt(windows * windowMs);
    expect(store.applyUpdate(update(ahead(2), [[0, 0, 0.1, t0]])).status).toBe("applied");
    const refused = store.applyUpdate(
      update(ahead(3), [
        [0, 0, 0.1, t0],
        [0, 1, 0.2, t0],
      ]),
    );
    expect(refused).toEqual({ status: "too_far_future", buckets: [], clampedTimestamps: 0 });
    expect(store.getSeed(ahead(3))).toEqual([]);
    expect(store.stats()).toMatchObject({
      seeds: 1,
      droppedDeltas: { too_old: 0, too_far_future: 2 },
    });
  });

  test("timestamps beyond now + maxClockSkewMs are clamped to it and counted", () => {
    const { store } = makeStore({ maxClockSkewMs: 1_000 });
    const result = store.applyUpdate(
      update(seed0, [
        [0, 0, 0.1, t0 + 1_000],
        [0, 1, 0.1, t0 + 60_000],
      ]),
    );
    expect(result.clampedTimestamps).toBe(1);
    expect(sorted(result.buckets).map((b) => b.lastUpdateTimeMs)).toEqual([t0 + 1_000, t0 + 1_000]);
    const single = store.applyDelta(seed0, 0, 2, 0.1, t0 + 5_000);
    expect(single).toMatchObject({
      timestampClamped: true,
      bucket: { lastUpdateTimeMs: t0 + 1_000 },
    });
    expect(store.stats().clampedTimestamps).toBe(2);
  });

  test("evictBefore removes older seeds everywhere and drops their late deltas", () => {
    const { store } = makeStore();
    const next = seed0 + BigInt(windowMs);
    store.applyDelta(seed0, 0, 0, 0.1, t0);
    store.namespace("a").applyDelta(seed0, 0, 0, 0.1, t0);
    store.namespace("a").applyDelta(next, 0, 0, 0.1, t0);
    expect(store.evictBefore(next)).toEqual({ seeds: 2, buckets: 2 });
    expect(store.stats()).toMatchObject({ namespaces: 1, seeds: 1, evictedSeeds: 2 });
    expect(store.applyDelta(seed0, 0, 0, 0.1, t0).status).toBe("too_old");
    expect(store.namespace("a").getSeed(next)).toHaveLength(1);
  });
});

describe("namespaces", () => {
  test("each namespace is an isolated key space; the store is the empty one", () => {
    const { store } = makeStore({ decayRatePerSecond: 0 });
    store.applyDelta(seed0, 0, 0, 0.1, t0);
    store.namespace("checkout").applyUpdate(update(seed0, [[0, 0, 0.2, t0]]));
    store.namespace("search").applyDelta(seed0, 0, 0, 0.3, t0);
    expect(store.getSeed(seed0)).toEqual([{ rowId: 0, colId: 0, prob: 0.1, lastUpdateTimeMs: t0 }]);
    expect(store.namespace("").getSeed(seed0)).toEqual(store.getSeed(seed0));
    expect(store.namespace("checkout").getSeed(seed0)[0]?.prob).toBe(0.2);
    expect(store.namespace("search").getSeed(seed0)[0]?.prob).toBe(0.3);
    expect(store.namespace("other").getSeed(seed0)).toEqual([]);
    expect(store.stats()).toMatchObject({ namespaces: 3, seeds: 3, buckets: 3 });
  });
});

describe("the Store interface", () => {
  test("generic callers may await every answer of the in-memory store", async () => {
    const generic: Store = new InMemoryStore({ windowMs, now: () => t0 });
    const ns = generic.namespace("n");
    expect((await ns.applyUpdate(update(seed0, [[1, 1, 0.5, t0]]))).buckets).toHaveLength(1);
    expect(await ns.getSeed(seed0)).toHaveLength(1);
    expect(await generic.stats()).toMatchObject({ buckets: 1 });
    expect(await generic.evictBefore(seed0 + 1n)).toEqual({ seeds: 1, buckets: 1 });
  });

  test("stats are plain numbers, counted per delta", () => {
    const { store } = makeStore();
    store.applyUpdate(
      update(seed0, [
        [0, 0, 0.1, t0],
        [0, 1, -0.1, t0],
      ]),
    );
    expect(store.stats()).toEqual({
      namespaces: 1,
      seeds: 1,
      buckets: 1,
      appliedDeltas: 2,
      droppedDeltas: { too_old: 0, too_far_future: 0 },
      clampedTimestamps: 0,
      evictedSeeds: 0,
      evictedBuckets: 0,
    });
  });
});
