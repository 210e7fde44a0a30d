// Bad input (docs/design.md §4): refused whole, naming the field, nothing applied.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import { describe, expect, test } from "vitest";
import { expectStoreError, seed0, t0, update } from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

// A valid first delta, then the bad one at index 1: the valid one must not
// be applied either.
function withBadSecond(bad: Partial<DeltaUpdate["deltas"][number]>): DeltaUpdate {
  const batch = update(seed0, [
    [0, 0, 0.5, t0],
    [0, 1, 0.5, t0],
  ]);
  Object.assign(batch.deltas[1] ?? {}, bad);
  return batch;
}

export function describeValidation(ctx: ConformanceContext): void {
  describe("a bad DeltaUpdate is refused whole, naming the field", () => {
    test.each([
      ["a NaN delta", { deltaProb: Number.NaN }, "invalid_argument", "deltas[1].delta_prob"],
      ["an infinite delta", { deltaProb: -Infinity }, "invalid_argument", "deltas[1].delta_prob"],
      ["a delta above 1", { deltaProb: 1.0001 }, "out_of_range", "deltas[1].delta_prob"],
      ["a delta below -1", { deltaProb: -2 }, "out_of_range", "deltas[1].delta_prob"],
      ["a negative row", { rowId: -1n }, "invalid_argument", "deltas[1].row_id"],
      ["a row at maxRows", { rowId: 256n }, "out_of_range", "deltas[1].row_id"],
      ["a row of 2^64 - 1", { rowId: 2n ** 64n - 1n }, "out_of_range", "deltas[1].row_id"],
      ["a column at maxCols", { colId: 2n ** 24n }, "out_of_range", "deltas[1].col_id"],
      ["a negative column", { colId: -5n }, "invalid_argument", "deltas[1].col_id"],
      [
        "a column that is neither a bigint nor a number",
        { colId: "3" as unknown as bigint },
        "invalid_argument",
        "deltas[1].col_id",
      ],
      [
        "a fractional column number",
        { colId: 1.5 as unknown as bigint },
        "invalid_argument",
        "deltas[1].col_id",
      ],
      [
        "a negative row number",
        { rowId: -1 as unknown as bigint },
        "invalid_argument",
        "deltas[1].row_id",
      ],
      [
        "a timestamp number of 2^53",
        { lastUpdateTimeMs: (2 ** 53) as unknown as bigint },
        "out_of_range",
        "deltas[1].last_update_time_ms",
      ],
      [
        "a timestamp of 2^53",
        { lastUpdateTimeMs: 2n ** 53n },
        "out_of_range",
        "deltas[1].last_update_time_ms",
      ],
      [
        "a timestamp past 2^53",
        { lastUpdateTimeMs: 2n ** 63n + 1n },
        "out_of_range",
        "deltas[1].last_update_time_ms",
      ],
    ] as const)("%s", async (_, bad, code, field) => {
      const { store } = await ctx.make();
      await expectStoreError(() => store.applyUpdate(withBadSecond(bad)), code, field);
      expect(await store.getSeed(seed0)).toEqual([]);
      expect(await store.stats()).toMatchObject({ buckets: 0, seeds: 0, appliedDeltas: 0 });
    });

    test("a seed that is not a window start is refused: another window length", async () => {
      const { store } = await ctx.make();
      const error = await expectStoreError(
        () => store.applyUpdate(update(seed0 + 1n, [[0, 0, 0.5, t0]])),
        "invalid_argument",
        "seed",
      );
      expect(error.message).toMatch(/windowMs 300000/);
      expect((await store.stats()).seeds).toBe(0);
    });

    test("a seed past 2^64 - 1 or below 0 is refused", async () => {
      const { store } = await ctx.make();
      await expectStoreError(
        () => store.applyUpdate(update(2n ** 64n, [])),
        "out_of_range",
        "seed",
      );
      await expectStoreError(
        () => store.applyUpdate(update(-300_000n, [])),
        "invalid_argument",
        "seed",
      );
    });

    test("a bad delta in a namespace leaves that namespace and the others untouched", async () => {
      const { store } = await ctx.make();
      await store.namespace("a").applyDelta(seed0, 0, 0, 0.5, t0);
      const before = await store.namespace("a").getSeed(seed0);
      await expectStoreError(
        () => store.namespace("a").applyUpdate(withBadSecond({ deltaProb: Number.NaN })),
        "invalid_argument",
        "deltas[1].delta_prob",
      );
      expect(await store.namespace("a").getSeed(seed0)).toEqual(before);
      expect(await store.stats()).toMatchObject({ buckets: 1, appliedDeltas: 1 });
    });

    test("uint64 fields given as integer numbers apply exactly as bigints do", async () => {
      const asBigints = update(seed0, [
        [1, 7, 0.25, t0],
        [1, 7, 0.5, t0 + 10],
        [3, 255, 0.125, t0 + 5],
      ]);
      const asNumbers = {
        seed: seed0,
        deltas: asBigints.deltas.map((d) => ({
          rowId: Number(d.rowId),
          colId: Number(d.colId),
          deltaProb: d.deltaProb,
          lastUpdateTimeMs: Number(d.lastUpdateTimeMs),
        })),
      };
      const [a, b] = [(await ctx.make()).store, (await ctx.make()).store];
      expect(await b.applyUpdate(asNumbers)).toEqual(await a.applyUpdate(asBigints));
      expect(await b.getSeed(seed0)).toEqual(await a.getSeed(seed0));
    });

    test("something that is not a DeltaUpdate is refused", async () => {
      const { store } = await ctx.make();
      await expectStoreError(
        () => store.applyUpdate(null as unknown as DeltaUpdate),
        "invalid_argument",
        "update",
      );
      const noDeltas = { ...create(DeltaUpdateSchema, { seed: seed0 }), deltas: undefined };
      await expectStoreError(
        () => store.applyUpdate(noDeltas as unknown as DeltaUpdate),
        "invalid_argument",
        "deltas",
      );
    });
  });

  describe("bad applyDelta arguments are refused, naming the parameter", () => {
    const good = [seed0, 0, 0, 0.5, t0] as const;
    test.each([
      ["a non-integer row", 1, 1.5, "invalid_argument", "rowId"],
      ["a negative row", 1, -1, "invalid_argument", "rowId"],
      ["a NaN row", 1, Number.NaN, "invalid_argument", "rowId"],
      ["a row at maxRows", 1, 256, "out_of_range", "rowId"],
      ["a column at maxCols", 2, 2 ** 24, "out_of_range", "colId"],
      ["a non-finite delta", 3, Number.POSITIVE_INFINITY, "invalid_argument", "deltaProb"],
      ["a delta above 1", 3, 1.5, "out_of_range", "deltaProb"],
      ["a fractional timestamp", 4, t0 + 0.5, "invalid_argument", "timestampMs"],
      ["a negative timestamp", 4, -1, "invalid_argument", "timestampMs"],
      ["an unsafe timestamp", 4, 2 ** 53, "out_of_range", "timestampMs"],
      ["a seed that is a number", 0, 1_764_136_800_000, "invalid_argument", "seed"],
    ] as const)("%s", async (_, position, value, code, field) => {
      const { store } = await ctx.make();
      const args: unknown[] = [...good];
      args[position] = value;
      const apply = store.applyDelta.bind(store) as (...a: unknown[]) => unknown;
      await expectStoreError(() => apply(...args), code, field);
      expect(await store.stats()).toMatchObject({ buckets: 0, appliedDeltas: 0 });
    });

    test("getSeed checks its seed the same way", async () => {
      const { store } = await ctx.make();
      await expectStoreError(() => store.getSeed(seed0 + 7n), "invalid_argument", "seed");
    });

    test("a namespace name must be a string", async () => {
      const { store } = await ctx.make();
      await expectStoreError(
        () => store.namespace(3 as unknown as string),
        "invalid_argument",
        "namespace",
      );
    });
  });
}
