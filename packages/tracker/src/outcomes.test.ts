// What a reported outcome does to a client's buckets (docs/fair-spec.md §5, §7): a failure adds Pi to the
// bucket on every level, a success subtracts Pd, both clamp to [0, 1], and buckets start at 0.
// Each test is one item of §14 and fails for the bug its mutant planted.
import { expect, test } from "vitest";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";
import { meanFinalProbability } from "./index.js";

// docs/fair-spec.md §14 item 2 (mutant m42).
test("a success subtracts Pd, not Pi", () => {
  const { tracker } = localTracker({ pi: 0.25, pd: 0.001, lambda: 0 });
  report(tracker, "a", "failure", 2);
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(0.5 - 0.001));
});

// docs/fair-spec.md §14 item 4 (mutant m44, equivalent); the intended property is asserted anyway.
test("p + Pi > 1 gives exactly 1, and from 1 a success gives 1 − Pd", () => {
  const { tracker } = localTracker({ pi: 0.3, pd: 0.01, lambda: 0 });
  report(tracker, "a", "failure", 4);
  expect(bucketsOf(tracker, "a")).toEqual([1, 1, 1]);
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(1 - 0.01));
});

// docs/fair-spec.md §14 item 23 (mutant m63).
test("every level is visited, level 0 included: a report changes the level-0 bucket; stats carry L indexes", () => {
  const { tracker } = localTracker({ l: 4 });
  tracker.reportOutcome("a", "failure");
  const stats = statsOf(tracker.registerRequest("a"));
  expect(stats.bucketProbabilities[0]).toBe(0.04);
  expect(stats.bucketProbabilities).toEqual([0.04, 0.04, 0.04, 0.04]);
  expect(stats.bucketIndexes).toHaveLength(4);
});

// docs/fair-spec.md §14 item 24 (mutant m64).
test("a success never increases p", () => {
  const { tracker } = localTracker({ lambda: 0 });
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual([0, 0, 0]);
  report(tracker, "a", "failure", 5);
  const before = bucketsOf(tracker, "a")[0] as number;
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")[0]).toBeLessThan(before);
});

// docs/fair-spec.md §14 item 30 (mutant m70).
test("fresh buckets start at p = 0: any flow's first request has pFinal 0", () => {
  const { tracker } = localTracker({ finalProbabilityFunction: meanFinalProbability });
  for (const id of ["a", "b", "steady-000", ""]) {
    const stats = statsOf(tracker.registerRequest(id));
    expect(stats.finalProbability).toBe(0);
    expect(stats.bucketProbabilities).toEqual([0, 0, 0]);
  }
});

// docs/fair-spec.md §14 item 33 (mutant m73).
test("the upper clamp is exactly 1: a saturated flow is throttled with probability 1", () => {
  const { tracker } = localTracker({}, { random: () => 1 - 2 ** -53 });
  report(tracker, "bad", "failure", 40);
  const decision = tracker.registerRequest("bad");
  expect(statsOf(decision).finalProbability).toBe(1);
  expect(decision.shouldThrottle).toBe(true);
});
