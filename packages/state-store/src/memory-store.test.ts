// What the in-memory store adds to the Store contract (the contract itself
// is @fair/state-store-conformance, which runs on this store too): synchronous answers.
import { describe, expect, test } from "vitest";
import { makeStore, seed0, t0, update } from "../test/helpers.js";

describe("the in-memory store", () => {
  test("answers synchronously: plain values, never promises", () => {
    const { store } = makeStore();
    const ns = store.namespace("n");
    const results = [
      ns.applyUpdate(update(seed0, [[1, 1, 0.5, t0]])),
      ns.applyDelta(seed0, 1, 2, 0.5, t0),
      ns.getSeed(seed0),
      store.stats(),
      store.evictBefore(seed0),
    ];
    for (const result of results) expect(result).not.toBeInstanceOf(Promise);
    expect(ns.getSeed(seed0)).toHaveLength(2);
  });

  test("a bad update throws at once rather than rejecting", () => {
    const { store } = makeStore();
    expect(() => store.applyDelta(seed0, 0, 0, Number.NaN, t0)).toThrow(/deltaProb/);
  });
});
