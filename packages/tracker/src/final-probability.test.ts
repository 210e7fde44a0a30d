// docs/fair-spec.md §2.3: the two final-probability functions, the default one, and the pFinal a
// decision reports.
import { FakeTime } from "@fair/testing";
import { expect, test } from "vitest";
import { localTracker, report, statsOf } from "../test/helpers.js";
import {
  FairnessTrackerBuilder,
  FairnessTrackerError,
  meanFinalProbability,
  minFinalProbability,
} from "./index.js";

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

// docs/fair-spec.md §14 item 10 (mutant m50).
test("mean is sum/len for len ≥ 2: mean([0.2, 0.4]) = 0.3, not 0.6", () => {
  expect(meanFinalProbability([0.2, 0.4])).toBeCloseTo(0.3, 15);
  expect(meanFinalProbability([0.2, 0.4])).toBe((0.2 + 0.4) / 2);
});

// docs/fair-spec.md §14 item 36 (mutant m76).
test("mean has no epsilon: mean([0, 0, 0]) = 0, so the flow is never throttled", () => {
  expect(meanFinalProbability([0, 0, 0])).toBe(0);
  const { tracker } = localTracker(
    { finalProbabilityFunction: meanFinalProbability },
    { random: () => Number.MIN_VALUE },
  );
  expect(tracker.registerRequest("a").shouldThrottle).toBe(false);
});

// docs/fair-spec.md §14 item 37 (mutant m77).
test("min starts at 1: min([1, 1, 1]) = 1, not 0.999", () => {
  expect(minFinalProbability([1, 1, 1])).toBe(1);
});

// docs/fair-spec.md §14 item 5 (mutant m45).
test("the default final function is min: buckets [1, 0, 0] give pFinal 0", () => {
  const time = new FakeTime(0);
  const tracker = new FairnessTrackerBuilder()
    .setM(10)
    .setIncludeStats(true)
    .build({ now: time.now, timers: time.timers, murmurSeed: () => 42 });
  const columns = (id: string) => statsOf(tracker.registerRequest(id)).bucketIndexes;
  const bad = columns("bad");
  const victim = Array.from({ length: 1000 }, (_, i) => `c-${i}`).find((id) => {
    const [c0, c1, c2] = columns(id);
    return c0 === bad[0] && c1 !== bad[1] && c2 !== bad[2];
  });
  if (victim === undefined) throw new Error("no id shares only level 0 with 'bad'");
  report(tracker, "bad", "failure", 30);
  const stats = statsOf(tracker.registerRequest(victim));
  expect(stats.bucketProbabilities).toEqual([1, 0, 0]);
  expect(stats.finalProbability).toBe(0);
});

// docs/fair-spec.md §14 item 39 (mutant m79).
test("stats.finalProbability is the raw pFinal of the decision (0.3982056865255148), not rounded", () => {
  const { tracker, time } = localTracker();
  for (let i = 1; i <= 10; i++) {
    time.set(i * 100);
    tracker.reportOutcome("client_id", "failure");
  }
  expect(statsOf(tracker.registerRequest("client_id")).finalProbability).toBe(0.3982056865255148);
});
