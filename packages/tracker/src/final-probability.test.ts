// FAIR-SPEC §2.3: the two final-probability functions.
import { expect, test } from "vitest";
import { FairnessTrackerError, meanFinalProbability, minFinalProbability } from "./index.js";

test("12: min([.9, .4, .7, .2]) = .2 and mean([.2, .4, .6, .8]) = .5", () => {
  expect(minFinalProbability([0.9, 0.4, 0.7, 0.2])).toBe(0.2);
  expect(meanFinalProbability([0.2, 0.4, 0.6, 0.8])).toBe(0.5);
});

test("min starts at 1, so it is at most 1 even for inputs above 1; NaN propagates", () => {
  expect(minFinalProbability([1.5])).toBe(1);
  expect(minFinalProbability([0.3, Number.NaN])).toBeNaN();
});

test("12 and §11.8: an empty input throws instead of calling Go's logger.Fatalf", () => {
  for (const fn of [minFinalProbability, meanFinalProbability]) {
    expect(() => fn([])).toThrow(FairnessTrackerError);
    expect(() => fn([])).toThrow("Cannot compute final probability with empty buckets slice");
  }
});
