import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { SeedSnapshotSchema, StoreSnapshotSchema } from "@fair/state-proto";
import { describe, expect, test } from "vitest";
import { makeStore, seed0, sorted, t0, update, windowMs } from "../test/helpers.js";
import { InMemoryStore, StoreError, snapshotFormatVersion } from "./index.js";

const maxSeed = 2n ** 64n - 1n;

function snapshotBytes(
  seeds: MessageInitShape<typeof SeedSnapshotSchema>[],
  formatVersion = snapshotFormatVersion,
) {
  return toBinary(
    StoreSnapshotSchema,
    create(StoreSnapshotSchema, {
      formatVersion,
      takenAtMs: BigInt(t0),
      seeds: seeds.map((s) => create(SeedSnapshotSchema, s)),
    }),
  );
}

const goodSeed = {
  seed: seed0,
  rowIds: [0, 1],
  colIds: [5, 6],
  probs: [0.25, 0.5],
  lastUpdateTimesMs: [BigInt(t0), BigInt(t0 + 1)],
};

describe("snapshot and restore", () => {
  test("a snapshot restores every namespace, seed and bucket exactly", () => {
    const { store } = makeStore();
    const next = seed0 + BigInt(windowMs);
    store.applyUpdate(
      update(seed0, [
        [0, 1, 0.125, t0],
        [255, 2 ** 24 - 1, 1, t0 + 7],
      ]),
    );
    store.namespace("checkout").applyDelta(next, 3, 4, 0.3, t0);
    const { store: copy } = makeStore();
    const epoch = store.epochs.current.id;
    expect(copy.restore(store.snapshot())).toEqual({
      seeds: 2,
      buckets: 3,
      skippedSeeds: 0,
      epoch,
      takenAtMs: t0,
    });
    // What came after the snapshot is lost: the copy is an epoch of its own.
    expect(copy.epochs.current.id).not.toBe(epoch);
    expect(sorted(copy.getSeed(seed0))).toEqual(sorted(store.getSeed(seed0)));
    expect(copy.namespace("checkout").getSeed(next)).toEqual([
      { rowId: 3, colId: 4, prob: 0.3, lastUpdateTimeMs: t0 },
    ]);
    expect(copy.stats()).toMatchObject({ namespaces: 2, seeds: 2, buckets: 3 });
  });

  test("seed 2^64 - 1 survives a round trip exactly", () => {
    // 2^64 − 1 is a multiple of 5, and a clock at 2^64 ms puts it in the
    // current window, so the store accepts it.
    const options = { windowMs: 5, now: () => 2 ** 64 };
    const store = new InMemoryStore(options);
    expect(store.namespace("tenant").applyDelta(maxSeed, 2, 3, 0.75, 1_000).status).toBe("applied");
    const copy = new InMemoryStore(options);
    copy.restore(store.snapshot());
    expect(copy.namespace("tenant").getSeed(maxSeed)).toEqual([
      { rowId: 2, colId: 3, prob: 0.75, lastUpdateTimeMs: 1_000 },
    ]);
    expect(copy.getSeed(maxSeed)).toEqual([]);
  });

  test("restore replaces what the store held", () => {
    const { store } = makeStore();
    store.applyDelta(seed0, 9, 9, 0.9, t0);
    store.restore(snapshotBytes([{ ...goodSeed, namespace: "n" }]));
    expect(store.getSeed(seed0)).toEqual([]);
    expect(store.namespace("n").getSeed(seed0)).toHaveLength(2);
  });

  test("restore skips seeds already behind the eviction horizon", () => {
    const { store, clock } = makeStore();
    const later = seed0 + BigInt(3 * windowMs);
    store.applyDelta(seed0, 0, 0, 0.5, t0);
    clock.nowMs = Number(later);
    store.applyDelta(later, 0, 0, 0.5, clock.nowMs);
    const { store: copy, clock: copyClock } = makeStore();
    copyClock.nowMs = Number(later) + 1_000;
    expect(copy.restore(store.snapshot())).toMatchObject({ seeds: 1, buckets: 1, skippedSeeds: 1 });
    expect(copy.getSeed(seed0)).toEqual([]);
    expect(copy.getSeed(later)).toHaveLength(1);
  });

  test("an empty store's snapshot restores to an empty store", () => {
    const { store } = makeStore();
    const { store: copy } = makeStore();
    expect(copy.restore(store.snapshot())).toMatchObject({ seeds: 0, buckets: 0, skippedSeeds: 0 });
  });
});

describe("a bad snapshot is refused and changes nothing", () => {
  test.each([
    [
      "bytes that are not a snapshot",
      new Uint8Array([0xff, 0xff, 0xff]),
      "snapshot_malformed",
      "bytes",
    ],
    ["no bytes at all (format_version 0)", new Uint8Array(), "snapshot_version", "format_version"],
    [
      "an unknown format_version",
      snapshotBytes([goodSeed], 3),
      "snapshot_version",
      "format_version",
    ],
    [
      "mismatched column lengths",
      snapshotBytes([{ ...goodSeed, probs: [0.25] }]),
      "snapshot_malformed",
      "seeds[0].probs",
    ],
    [
      "a row beyond maxRows",
      snapshotBytes([{ ...goodSeed, rowIds: [0, 256] }]),
      "snapshot_malformed",
      "seeds[0].row_ids[1]",
    ],
    [
      "a column beyond maxCols",
      snapshotBytes([{ ...goodSeed, colIds: [2 ** 24, 0] }]),
      "snapshot_malformed",
      "seeds[0].col_ids[0]",
    ],
    [
      "a probability above 1",
      snapshotBytes([{ ...goodSeed, probs: [0.25, 1.5] }]),
      "snapshot_malformed",
      "seeds[0].probs[1]",
    ],
    [
      "a NaN probability",
      snapshotBytes([{ ...goodSeed, probs: [Number.NaN, 0.5] }]),
      "snapshot_malformed",
      "seeds[0].probs[0]",
    ],
    [
      "a timestamp past 2^53",
      snapshotBytes([{ ...goodSeed, lastUpdateTimesMs: [1n, 2n ** 60n] }]),
      "snapshot_malformed",
      "seeds[0].last_update_times_ms[1]",
    ],
    [
      "a repeated bucket",
      snapshotBytes([{ ...goodSeed, rowIds: [1, 1], colIds: [6, 6] }]),
      "snapshot_malformed",
      "seeds[0].row_ids[1]",
    ],
    [
      "a repeated seed (format 1)",
      snapshotBytes([goodSeed, goodSeed], 1),
      "snapshot_malformed",
      "seeds[1]",
    ],
    [
      "a seed repeated after another (format 2)",
      snapshotBytes([goodSeed, { ...goodSeed, namespace: "n" }, goodSeed]),
      "snapshot_malformed",
      "seeds[2]",
    ],
    [
      "a bucket repeated in the next part of its seed (format 2)",
      snapshotBytes([goodSeed, { ...goodSeed, rowIds: [2, 1], colIds: [0, 6] }]),
      "snapshot_malformed",
      "seeds[1].row_ids[1]",
    ],
    [
      "a snapshot cut short",
      snapshotBytes([goodSeed]).subarray(0, 20),
      "snapshot_malformed",
      "bytes",
    ],
    [
      "a packed column cut short inside its part",
      Uint8Array.of(0x08, 0x02, 0x1a, 0x03, 0x1a, 0x05, 0x01),
      "snapshot_malformed",
      "seeds[0]",
    ],
    [
      "a seed that is not a window start",
      snapshotBytes([goodSeed, { ...goodSeed, seed: seed0 + 1n }]),
      "snapshot_malformed",
      "seeds[1].seed",
    ],
  ])("%s", (_, bytes, code, field) => {
    const { store } = makeStore();
    store.applyDelta(seed0, 7, 7, 0.7, t0);
    const before = store.snapshot();
    let caught: unknown;
    try {
      store.restore(bytes);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect(caught).toMatchObject({ code, field });
    expect(store.snapshot()).toEqual(before);
    expect(store.getSeed(seed0)).toEqual([{ rowId: 7, colId: 7, prob: 0.7, lastUpdateTimeMs: t0 }]);
  });

  test("something that is not bytes is refused", () => {
    const { store } = makeStore();
    expect(() => store.restore("snapshot" as unknown as Uint8Array)).toThrow(StoreError);
  });
});
