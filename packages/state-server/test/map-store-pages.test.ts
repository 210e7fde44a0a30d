// The test-only store keeps the Store contract's paged read: the server's
// suite runs on it, so its readSeed must be as strict as the real stores'.
import { StoreError } from "@fair/state-store";
import { FakeTime } from "@fair/testing";
import { expect, test } from "vitest";
import { seed0, t0 } from "./harness.js";
import { MapStore } from "./map-store.js";

async function storeWith(count: number): Promise<MapStore> {
  const time = new FakeTime(t0);
  const store = new MapStore({ now: time.now, timers: time.timers });
  const deltas = Array.from({ length: count }, (_, i) => ({
    rowId: 0,
    colId: i,
    deltaProb: 0.25,
    lastUpdateTimeMs: t0,
  }));
  await store.applyUpdate({ seed: seed0, deltas });
  return store;
}

test("paging a seed while it changes lists every bucket held throughout exactly once, with a value at least as new as when the read began", async () => {
  const store = await storeWith(1_000);
  const seen = new Map<number, number[]>();
  let cursor: string | number | undefined;
  let page = 0;
  do {
    const read = await store.readSeed(seed0, cursor, 100);
    expect(read.buckets.length).toBeLessThanOrEqual(100);
    for (const b of read.buckets) seen.set(b.colId, [...(seen.get(b.colId) ?? []), b.prob]);
    cursor = read.next;
    // Between pages: raise every tenth bucket, remove one, add one.
    const deltas = [
      ...Array.from({ length: 100 }, (_, i) => ({
        rowId: 0,
        colId: i * 10,
        deltaProb: 0.5,
        lastUpdateTimeMs: t0,
      })),
      { rowId: 0, colId: 999 - page, deltaProb: -1, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 5_000 + page, deltaProb: 0.5, lastUpdateTimeMs: t0 },
    ];
    await store.applyUpdate({ seed: seed0, deltas });
    page++;
  } while (cursor !== undefined);

  for (let col = 0; col < 1_000 - page; col++) {
    const values = seen.get(col);
    expect(values, `column ${col}`).toHaveLength(1);
    expect(values?.[0]).toBeGreaterThanOrEqual(0.25);
  }
});

test("an unknown seed is one empty page; a bad cursor or limit is a StoreError", async () => {
  const store = await storeWith(3);
  expect(await store.readSeed(seed0 + 300_000n, undefined, 10)).toEqual({
    buckets: [],
    next: undefined,
  });
  expect(await store.readSeed(seed0, undefined, 10)).toMatchObject({ next: undefined });
  expect((await store.readSeed(seed0, undefined, 2)).next).toBe(2);
  await expect(store.readSeed(seed0, "elsewhere", 2)).rejects.toBeInstanceOf(StoreError);
  await expect(store.readSeed(seed0, -1, 2)).rejects.toMatchObject({ field: "cursor" });
  await expect(store.readSeed(seed0, undefined, 0)).rejects.toMatchObject({ field: "limit" });
});
