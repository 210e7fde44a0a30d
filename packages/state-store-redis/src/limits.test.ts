// The Redis side of maxSeedsPerNamespace, maxBucketsPerSeed and
// maxNamespaces (the shared conformance suite checks the semantics): the
// limits hold across replicas, because the script checks them against what
// Redis holds, and the namespace's seed set and the namespace set it counts
// stay exact through falls to 0, eviction and expiry.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import { StoreError } from "@fair/state-store";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";
import { KeyLayout } from "./keys.js";

const url = inject("redisUrl");
const windowMs = 300_000;
const seed0 = 1_764_136_800_000n;
const t0 = Number(seed0) + 1_000;
const seedAt = (windows: number) => seed0 + BigInt(windows * windowMs);

function update(seed: bigint, deltas: [number, number, number][]): DeltaUpdate {
  return create(DeltaUpdateSchema, {
    seed,
    deltas: deltas.map(([row, col, deltaProb]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      deltaProb,
      lastUpdateTimeMs: BigInt(t0),
    })),
  });
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `count` replicas on one key prefix, and a plain connection to look at the keys. */
async function replicas(count: number, options: Partial<RedisStoreOptions>) {
  const keyPrefix = uniqueKeyPrefix("limits");
  cleanups.push(() => deleteKeys(url, keyPrefix));
  const stores: RedisStore[] = [];
  for (let i = 0; i < count; i++) {
    const store = new RedisStore({ url, keyPrefix, now: () => t0, ...options });
    cleanups.push(() => store.stop());
    store.start();
    await store.whenReady();
    stores.push(store);
  }
  const redis = new Redis(url);
  cleanups.push(() => redis.quit());
  // One Redis: one slot group holds everything.
  const keys = new KeyLayout(keyPrefix, 1);
  const group = keys.groups[0] as NonNullable<(typeof keys.groups)[0]>;
  return {
    stores,
    redis,
    seedSet: keys.namespaceSeeds(group, "checkout"),
    namespaceSet: group.namespaces,
  };
}

async function refusal(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

describe.skipIf(url === "")("limits on Redis", () => {
  test("maxSeedsPerNamespace counts the seeds every replica added", async () => {
    const {
      stores: [a, b],
    } = await replicas(2, { maxSeedsPerNamespace: 2 });
    if (!a || !b) throw new Error("two replicas");
    await a.namespace("checkout").applyUpdate(update(seedAt(0), [[0, 0, 0.1]]));
    await b.namespace("checkout").applyUpdate(update(seedAt(1), [[0, 0, 0.1]]));
    const error = await refusal(
      a.namespace("checkout").applyUpdate(update(seedAt(2), [[0, 0, 0.1]])),
    );
    expect(error).toMatchObject({ code: "limit_exceeded", field: "seed" });
    expect(error.message).toContain("maxSeedsPerNamespace (2)");
    expect((await a.stats()).limitRefusals.max_seeds_per_namespace).toBe(1);
    expect((await b.stats()).limitRefusals.max_seeds_per_namespace).toBe(0);
  });

  test("maxBucketsPerSeed counts the buckets every replica added", async () => {
    const {
      stores: [a, b],
    } = await replicas(2, { maxBucketsPerSeed: 2 });
    if (!a || !b) throw new Error("two replicas");
    await a.applyUpdate(update(seed0, [[0, 0, 0.1]]));
    await b.applyUpdate(update(seed0, [[0, 1, 0.1]]));
    const error = await refusal(b.applyUpdate(update(seed0, [[1, 0, 0.1]])));
    expect(error.message).toContain("would hold 3 buckets, more than maxBucketsPerSeed (2)");
    expect(await a.getSeed(seed0)).toHaveLength(2);
  });

  test("the namespace's seed set holds exactly the seeds with buckets, and eviction empties it", async () => {
    const {
      stores: [store],
      redis,
      seedSet,
    } = await replicas(1, {});
    if (!store) throw new Error("one replica");
    const checkout = store.namespace("checkout");
    await checkout.applyUpdate(update(seedAt(0), [[0, 0, 0.1]]));
    await checkout.applyUpdate(update(seedAt(1), [[0, 0, 0.1]]));
    const padded = (seed: bigint) => seed.toString().padStart(20, "0");
    expect(await redis.zrange(seedSet, "0", "-1")).toEqual([padded(seedAt(0)), padded(seedAt(1))]);
    // A seed whose buckets all fall to 0 leaves the set.
    await checkout.applyUpdate(update(seedAt(1), [[0, 0, -1]]));
    expect(await redis.zrange(seedSet, "0", "-1")).toEqual([padded(seedAt(0))]);
    // An evicted seed leaves it too.
    await store.evictBefore(seedAt(1));
    expect(await redis.exists(seedSet)).toBe(0);
  });

  test("maxNamespaces counts the namespaces every replica added", async () => {
    const {
      stores: [a, b],
    } = await replicas(2, { maxNamespaces: 2 });
    if (!a || !b) throw new Error("two replicas");
    await a.namespace("one").applyUpdate(update(seed0, [[0, 0, 0.1]]));
    await b.namespace("two").applyUpdate(update(seed0, [[0, 0, 0.1]]));
    const error = await refusal(b.namespace("three").applyUpdate(update(seed0, [[0, 0, 0.1]])));
    expect(error).toMatchObject({ code: "limit_exceeded", field: "seed" });
    expect(error.message).toContain("maxNamespaces (2)");
    expect((await b.stats()).limitRefusals.max_namespaces).toBe(1);
    expect((await a.stats()).limitRefusals.max_namespaces).toBe(0);
    // Either replica may still add seeds to the namespaces that hold buckets.
    await a.namespace("two").applyUpdate(update(seedAt(1), [[0, 0, 0.1]]));
  });

  test("the namespace set holds the namespaces with buckets, scored by their latest seed", async () => {
    const {
      stores: [store],
      redis,
      namespaceSet,
    } = await replicas(1, {});
    if (!store) throw new Error("one replica");
    await store.namespace("checkout").applyUpdate(update(seedAt(0), [[0, 0, 0.1]]));
    await store.namespace("checkout").applyUpdate(update(seedAt(1), [[0, 0, 0.1]]));
    await store.namespace("a b").applyUpdate(update(seedAt(0), [[0, 0, 0.1]]));
    const scored = async () => redis.zrange(namespaceSet, "0", "-1", "WITHSCORES");
    expect(await scored()).toEqual(["a%20b", String(seedAt(0)), "checkout", String(seedAt(1))]);
    // Its latest seed falling to 0 lowers a namespace's score; its last one removes it.
    await store.namespace("checkout").applyUpdate(update(seedAt(1), [[0, 0, -1]]));
    await store.namespace("a b").applyUpdate(update(seedAt(0), [[0, 0, -1]]));
    expect(await scored()).toEqual(["checkout", String(seedAt(0))]);
    // Eviction removes the namespaces it empties.
    await store.evictBefore(seedAt(1));
    expect(await redis.exists(namespaceSet)).toBe(0);
  });
});
