// Paged reads of a seed (StoreNamespace.readSeed): what a server answers a
// StateRequest with, one page per message, so a seed of any size costs one
// page at a time. Pages never exceed the limit; together they list what
// getSeed lists; a bucket held throughout a read is listed, at least as new
// as when the read began, however the seed changes between pages.
import type { BucketState, SeedCursor, SeedPage, Store, StoreNamespace } from "@fair/state-store";
import { describe, expect, test } from "vitest";
import {
  type DeltaTuple,
  expectStoreError,
  seed0,
  sorted,
  t0,
  update,
  windowMs,
} from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

const id = (bucket: BucketState) => `${bucket.rowId}/${bucket.colId}`;

/** Reads every page of `seed` with `limit`, calling `between` after each page but the last. */
async function readAll(
  space: StoreNamespace,
  seed: bigint,
  limit: number,
  between?: (page: number) => Promise<void>,
): Promise<SeedPage[]> {
  const pages: SeedPage[] = [];
  let cursor: SeedCursor | undefined;
  do {
    const page = await space.readSeed(seed, cursor, limit);
    pages.push(page);
    cursor = page.next;
    if (cursor !== undefined) await between?.(pages.length);
    // A store that never ends its pages fails here rather than hanging.
    expect(pages.length).toBeLessThan(10_000);
  } while (cursor !== undefined);
  return pages;
}

/** The buckets of every page, each once; a bucket listed twice must be listed alike. */
function union(pages: readonly SeedPage[]): BucketState[] {
  const seen = new Map<string, BucketState>();
  for (const bucket of pages.flatMap((page) => page.buckets)) {
    const before = seen.get(id(bucket));
    if (before === undefined || bucket.lastUpdateTimeMs >= before.lastUpdateTimeMs) {
      seen.set(id(bucket), bucket);
    }
  }
  return [...seen.values()];
}

/** `count` buckets over a few rows of different sizes, one with most of them. */
function spread(count: number, prob: number, ts: number): DeltaTuple[] {
  return Array.from({ length: count }, (_, i) => {
    const row = i % 5 === 0 ? i % 3 : 7;
    return [row, i, prob, ts] as const;
  });
}

async function fill(store: Store | StoreNamespace, seed: bigint, deltas: DeltaTuple[]) {
  for (let i = 0; i < deltas.length; i += 500) {
    await store.applyUpdate(update(seed, deltas.slice(i, i + 500)));
  }
}

export function describeReadSeed(ctx: ConformanceContext): void {
  describe("readSeed: a seed a page at a time", () => {
    test("every page together lists exactly what getSeed lists, no page past the limit", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      await fill(store, seed0, spread(300, 0.25, t0));
      // Neighbours that must not leak into the pages.
      await fill(store, seed0 + BigInt(windowMs), spread(40, 0.5, t0));
      await fill(store.namespace("other"), seed0, spread(40, 0.5, t0));
      const all = sorted(await store.getSeed(seed0));
      expect(all).toHaveLength(300);
      for (const limit of [7, 1, 1_000]) {
        const pages = await readAll(store, seed0, limit);
        for (const page of pages) expect(page.buckets.length).toBeLessThanOrEqual(limit);
        expect(sorted(union(pages))).toEqual(all);
      }
    });

    test("an unknown seed is one empty page with no next", async () => {
      const { store } = await ctx.make();
      await store.applyDelta(seed0, 0, 1, 0.5, t0);
      expect(await store.readSeed(seed0 + BigInt(windowMs), undefined, 7)).toEqual({
        buckets: [],
        next: undefined,
      });
      expect(await store.namespace("nobody").readSeed(seed0, undefined, 7)).toEqual({
        buckets: [],
        next: undefined,
      });
    });

    test("a bucket held throughout is listed, at least as new as at the start, while others come and go between pages", async () => {
      const { store } = await ctx.make({ decayRatePerSecond: 0 });
      const start = spread(120, 0.25, t0);
      await fill(store, seed0, start);
      // The buckets at even positions are held throughout; the odd ones may go.
      const held = new Map(
        start.filter((_, i) => i % 2 === 0).map(([row, col]) => [`${row}/${col}`, t0]),
      );
      const pages = await readAll(store, seed0, 7, async (page) => {
        const changes: DeltaTuple[] = [];
        // Raise a held bucket, drop an odd one to 0, add three new ones.
        const [row, col] = start[(page * 2) % start.length] as DeltaTuple;
        changes.push([row, col, 0.01, t0 + page]);
        const [oddRow, oddCol] = start[(page * 2 + 1) % start.length] as DeltaTuple;
        changes.push([oddRow, oddCol, -1, t0 + page]);
        for (let k = 0; k < 3; k++)
          changes.push([k % 2 === 0 ? 7 : 9, 1_000 + page * 3 + k, 0.5, t0]);
        await store.applyUpdate(update(seed0, changes));
      });
      const listed = new Map(union(pages).map((bucket) => [id(bucket), bucket]));
      for (const [key, startedAt] of held) {
        const bucket = listed.get(key);
        expect(bucket, `held bucket ${key}`).toBeDefined();
        expect(bucket?.lastUpdateTimeMs).toBeGreaterThanOrEqual(startedAt);
        expect(bucket?.prob).toBeGreaterThanOrEqual(0.25);
      }
      for (const page of pages) expect(page.buckets.length).toBeLessThanOrEqual(7);
    });

    test("a cursor the store did not return, or a limit under 1, is refused naming it", async () => {
      const { store } = await ctx.make();
      await store.applyDelta(seed0, 0, 1, 0.5, t0);
      for (const cursor of ["not a cursor", -1, 1.5, Number.NaN]) {
        await expectStoreError(
          () => store.readSeed(seed0, cursor as SeedCursor, 7),
          "invalid_argument",
          "cursor",
        );
      }
      for (const limit of [0, -1, 1.5, Number.NaN, "7" as unknown as number]) {
        await expectStoreError(
          () => store.readSeed(seed0, undefined, limit),
          "invalid_argument",
          "limit",
        );
      }
      await expectStoreError(
        () => store.readSeed(seed0 + 1n, undefined, 7),
        "invalid_argument",
        "seed",
      );
    });
  });
}
