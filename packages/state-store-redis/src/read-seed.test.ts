// The Redis side of readSeed (the shared conformance suite checks the
// contract): rows large enough that Redis keeps them as hash tables, which
// HSCAN pages through by COUNT, and rows small enough to come back whole,
// whose surplus the cursor carries to the next page.
import { create } from "@bufbuild/protobuf";
import { DeltaUpdateSchema } from "@fair/state-proto";
import type { BucketState, SeedCursor, SeedPage } from "@fair/state-store";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore } from "./index.js";

const url = inject("redisUrl");
const seed = 1_764_136_800_000n;
const t0 = Number(seed) + 1_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function storeWith(rows: Record<number, number>): Promise<RedisStore> {
  const keyPrefix = uniqueKeyPrefix("read-seed");
  cleanups.push(() => deleteKeys(url, keyPrefix));
  const store = new RedisStore({ url, keyPrefix, now: () => t0, decayRatePerSecond: 0 });
  cleanups.push(() => store.stop());
  store.start();
  await store.whenReady();
  for (const [row, count] of Object.entries(rows)) {
    for (let base = 0; base < count; base += 1000) {
      const deltas = [];
      for (let col = base; col < Math.min(count, base + 1000); col++) {
        deltas.push({
          rowId: BigInt(row),
          colId: BigInt(col),
          deltaProb: 0.5,
          lastUpdateTimeMs: BigInt(t0),
        });
      }
      await store.applyUpdate(create(DeltaUpdateSchema, { seed, deltas }));
    }
  }
  return store;
}

async function pages(store: RedisStore, limit: number): Promise<SeedPage[]> {
  const out: SeedPage[] = [];
  let cursor: SeedCursor | undefined;
  do {
    const page = await store.readSeed(seed, cursor, limit);
    out.push(page);
    cursor = page.next;
  } while (cursor !== undefined && out.length < 10_000);
  return out;
}

const ids = (buckets: readonly BucketState[]) =>
  [...new Set(buckets.map((b) => `${b.rowId}/${b.colId}`))].sort();

describe.skipIf(url === "")("readSeed on Redis", () => {
  test("a row held as a hash table is paged by COUNT, small rows whole, never past the limit", async () => {
    // 3 000 fields: past hash-max-listpack-entries (128 by default, 512 in some packages).
    const store = await storeWith({ 0: 3_000, 1: 40, 2: 1 });
    const all = ids(await store.getSeed(seed));
    expect(all).toHaveLength(3_041);
    for (const limit of [100, 7]) {
      const read = await pages(store, limit);
      for (const page of read) expect(page.buckets.length).toBeLessThanOrEqual(limit);
      expect(ids(read.flatMap((page) => page.buckets))).toEqual(all);
      // A hash table is read a part at a time, never whole.
      expect(read.length).toBeGreaterThanOrEqual(Math.ceil(3_041 / limit));
    }
  });

  test("cursors are strings this store wrote; a number or a forged string is refused", async () => {
    const store = await storeWith({ 0: 600 });
    const first = await store.readSeed(seed, undefined, 10);
    expect(typeof first.next).toBe("string");
    for (const cursor of [
      0,
      "s1:0",
      "s3:0::0:",
      "s3:1:5:0:",
      `${String(first.next)}x`,
      "s3:0::-:5",
    ]) {
      await expect(store.readSeed(seed, cursor, 10)).rejects.toMatchObject({
        code: "invalid_argument",
        field: "cursor",
      });
    }
  });
});
