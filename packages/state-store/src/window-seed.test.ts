import { expect, test } from "vitest";
import { StoreError, windowSeed } from "./index.js";

test("windowSeed is the start of the window holding the time, as an exact bigint", () => {
  expect(windowSeed(1_764_137_012_345, 300_000)).toBe(1_764_136_800_000n);
  expect(windowSeed(1_764_136_800_000, 300_000)).toBe(1_764_136_800_000n);
  expect(windowSeed(299_999, 300_000)).toBe(0n);
});

test("windowSeed refuses a window that is not a positive integer, or a time that is not finite", () => {
  expect(() => windowSeed(1, 0)).toThrow(StoreError);
  expect(() => windowSeed(Number.NaN, 300_000)).toThrow(StoreError);
});
