// The streaming side of snapshots (StorePersistence): chunks that
// concatenate to the one-step snapshot, a point-in-time view while the store
// keeps changing between chunks, restores from chunks cut anywhere, turns of
// the event loop, and refusals that leave the store as it was.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SeedSnapshotSchema, StoreSnapshotSchema } from "@fair/state-proto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { makeStore, seed0, sorted, t0, update, windowMs } from "../test/helpers.js";
import {
  type BucketState,
  type InMemoryStore,
  StoreError,
  snapshotFormatVersion,
} from "./index.js";

const next = seed0 + BigInt(windowMs);

/** Fills `seed` of `store` with `count` buckets, 1 000 per update, spread over four rows. */
function fill(store: InMemoryStore, seed: bigint, count: number, prob = 0.25): void {
  for (let base = 0; base < count; base += 1000) {
    const deltas: [number, number, number, number][] = [];
    for (let k = base; k < Math.min(count, base + 1000); k++) {
      deltas.push([k % 4, Math.floor(k / 4), prob, t0 + (k % 7)]);
    }
    store.applyUpdate(update(seed, deltas));
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

async function* cut(bytes: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

describe("streamed snapshots", () => {
  test("the chunks concatenate to the one-step snapshot, a StoreSnapshot of format 2 in parts of at most 8 192 buckets", async () => {
    const { store } = makeStore();
    fill(store, seed0, 20_000);
    store.namespace("checkout").applyDelta(next, 3, 4, 0.5, t0);
    const chunks = await collect(store.persistence.snapshot());
    expect(chunks.length).toBeGreaterThan(1);
    const bytes = concat(chunks);
    expect(Buffer.from(bytes).equals(store.snapshot())).toBe(true);
    const decoded = fromBinary(StoreSnapshotSchema, bytes);
    expect(decoded.formatVersion).toBe(snapshotFormatVersion);
    expect(decoded.formatVersion).toBe(2);
    expect(decoded.seeds.length).toBeGreaterThan(2);
    for (const part of decoded.seeds) expect(part.rowIds.length).toBeLessThanOrEqual(8192);
    expect(decoded.seeds.reduce((n, part) => n + part.probs.length, 0)).toBe(20_001);
  });

  test("a snapshot is the store as it stood when iteration began, whatever is applied between chunks", async () => {
    const { store } = makeStore({ decayRatePerSecond: 0 });
    fill(store, seed0, 50_000);
    // A full first page of 4 096 slots: the next new bucket doubles it.
    fill(store, next, 4_096);
    const before = sorted(store.getSeed(seed0));
    const beforeNext = sorted(store.getSeed(next));
    const chunks: Uint8Array[] = [];
    let round = 0;
    for await (const chunk of store.persistence.snapshot()) {
      chunks.push(chunk);
      // Between chunks, on the pages not read yet (bucket k sits in slot k):
      // raise buckets, drop some to 0 and add new ones in their slots; add a
      // seed; then grow the table past its columns (and the small seed's
      // first page).
      const k = 49_999 - round++ * 997;
      store.applyUpdate(
        update(seed0, [
          [k % 4, Math.floor(k / 4), 0.5, t0 + 10],
          [(k - 1) % 4, Math.floor((k - 1) / 4), -1, t0 + 10],
          [(k - 2) % 4, Math.floor((k - 2) / 4), -1, t0 + 10],
          [7, round, 0.5, t0],
        ]),
      );
      store.applyDelta(next, 9, round, 0.5, t0);
      if (round === 1) fill(store, seed0 + 2n * BigInt(windowMs), 100);
      if (round === 2) {
        // 20 000 new buckets: past 65 536 slots, the table moves to larger columns.
        for (let base = 0; base < 20_000; base += 1000) {
          store.applyUpdate(
            update(
              seed0,
              Array.from({ length: 1000 }, (_, c) => [5, base + c, 0.5, t0] as const),
            ),
          );
        }
      }
    }
    expect(round).toBeGreaterThanOrEqual(4);
    const { store: copy } = makeStore({ decayRatePerSecond: 0 });
    expect(await copy.persistence.restore(chunks)).toEqual({
      seeds: 2,
      buckets: 54_096,
      skippedSeeds: 0,
      epoch: store.epochs.current.id,
      takenAtMs: t0,
    });
    expect(sorted(copy.getSeed(seed0))).toEqual(before);
    expect(sorted(copy.getSeed(next))).toEqual(beforeNext);
  });

  test("a snapshot left early is closed, and the next one sees the store as it is then", async () => {
    const { store } = makeStore();
    fill(store, seed0, 40_000);
    for await (const _ of store.persistence.snapshot()) break;
    store.applyDelta(seed0, 9, 9, 0.75, t0);
    const { store: copy } = makeStore();
    await copy.persistence.restore(await collect(store.persistence.snapshot()));
    expect(sorted(copy.getSeed(seed0))).toEqual(sorted(store.getSeed(seed0)));
  });

  test("restore reads chunks cut anywhere, of either format", async () => {
    const { store } = makeStore();
    fill(store, seed0, 9_000);
    store.namespace("é/ü").applyDelta(next, 255, 2 ** 24 - 1, 1, t0 + 3);
    const expected = sorted(store.getSeed(seed0));
    // Format 1, as the previous release wrote it: one entry per seed.
    const entry = (namespace: string, seed: bigint, buckets: readonly BucketState[]) =>
      create(SeedSnapshotSchema, {
        namespace,
        seed,
        rowIds: buckets.map((b) => b.rowId),
        colIds: buckets.map((b) => b.colId),
        probs: buckets.map((b) => b.prob),
        lastUpdateTimesMs: buckets.map((b) => BigInt(b.lastUpdateTimeMs)),
      });
    const formatOne = toBinary(
      StoreSnapshotSchema,
      create(StoreSnapshotSchema, {
        formatVersion: 1,
        takenAtMs: BigInt(t0),
        seeds: [
          entry("", seed0, expected),
          entry("é/ü", next, store.namespace("é/ü").getSeed(next)),
        ],
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(store.snapshot(), formatOne),
        fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 8 }),
        async (bytes, sizes) => {
          const { store: copy } = makeStore();
          const result = await copy.persistence.restore(cut(bytes, sizes));
          expect(result).toMatchObject({ seeds: 2, buckets: 9_001, skippedSeeds: 0 });
          expect(sorted(copy.getSeed(seed0))).toEqual(expected);
          expect(copy.namespace("é/ü").getSeed(next)).toHaveLength(1);
        },
      ),
      { numRuns: 25 },
    );
  });

  test("a format-1 seed larger than one copy step restores from 1 MiB chunks", async () => {
    const { store } = makeStore();
    fill(store, seed0, 250_000);
    const buckets = store.getSeed(seed0);
    const bytes = toBinary(
      StoreSnapshotSchema,
      create(StoreSnapshotSchema, {
        formatVersion: 1,
        seeds: [
          create(SeedSnapshotSchema, {
            seed: seed0,
            rowIds: buckets.map((b) => b.rowId),
            colIds: buckets.map((b) => b.colId),
            probs: buckets.map((b) => b.prob),
            lastUpdateTimesMs: buckets.map((b) => BigInt(b.lastUpdateTimeMs)),
          }),
        ],
      }),
    );
    // One entry past 4 MiB, spanning five chunks.
    expect(bytes.length).toBeGreaterThan(2 ** 22);
    const { store: copy } = makeStore();
    expect(await copy.persistence.restore(cut(bytes, [2 ** 20]))).toEqual({
      seeds: 1,
      buckets: 250_000,
      skippedSeeds: 0,
      epoch: "",
      takenAtMs: undefined,
    });
    // The same buckets, written by another epoch.
    const seedsOf = (snapshot: Uint8Array) => fromBinary(StoreSnapshotSchema, snapshot).seeds;
    expect(seedsOf(copy.snapshot())).toEqual(seedsOf(store.snapshot()));
  });

  test("the event loop turns while a large snapshot is written and read", async () => {
    const { store } = makeStore();
    fill(store, seed0, 100_000);
    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const chunks = await collect(store.persistence.snapshot());
    const written = turns;
    const { store: copy } = makeStore();
    await copy.persistence.restore(chunks);
    running = false;
    expect(written).toBeGreaterThan(1);
    expect(turns - written).toBeGreaterThan(1);
    expect(copy.stats().buckets).toBe(100_000);
  });

  test("a bad or cut-short stream is refused, and the store keeps what it held", async () => {
    const { store } = makeStore();
    store.applyDelta(seed0, 7, 7, 0.7, t0);
    const { store: big } = makeStore();
    fill(big, seed0, 20_000);
    const good = big.snapshot();
    for (const [chunks, code, field] of [
      [[good.subarray(0, good.length - 5)], "snapshot_malformed", "bytes"],
      [[good.subarray(0, 2), Uint8Array.of(0xff, 0xff)], "snapshot_malformed", "bytes"],
      [[], "snapshot_version", "format_version"],
      [["not bytes"], "invalid_argument", "chunks"],
    ] as const) {
      const error = await store.persistence.restore(chunks as Iterable<Uint8Array>).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code, field });
      expect(store.getSeed(seed0)).toEqual([
        { rowId: 7, colId: 7, prob: 0.7, lastUpdateTimeMs: t0 },
      ]);
      expect(store.stats()).toMatchObject({ seeds: 1, buckets: 1 });
    }
  });
});
