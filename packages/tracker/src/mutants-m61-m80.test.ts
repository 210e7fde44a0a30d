// FAIR-SPEC §14, items 21–40 (mutants m61–m80): one test per item. Equivalent mutants (m68)
// and m62, which no behaviour can reveal (fresh buckets are 0 whatever their timestamp),
// assert the intended property anyway.

import { FakeTime } from "@fair/testing";
import { expect, test } from "vitest";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";
import { countingRandom } from "../test/sources.js";
import { adjustProbability } from "./decay.js";
import {
  calculateL,
  defaultFairnessTrackerConfig,
  FairnessTracker,
  FairnessTrackerError,
  generateTunedStructureConfig,
  meanFinalProbability,
  minFinalProbability,
} from "./index.js";

test("m61: λ is not scaled up — adjust(1, 0.01, 1000) = e^−0.01", () => {
  expect(adjustProbability(1, 0.01, 1000)).toBe(0.99004983374916811);
});

test("m62: buckets are stamped in ms at creation — a first visit long after reads exactly 0, and a failure gives exactly Pi", () => {
  const { tracker, time } = localTracker({ lambda: 0.5 });
  time.tick(123_456);
  expect(bucketsOf(tracker, "a")).toEqual([0, 0, 0]);
  tracker.reportOutcome("b", "failure");
  expect(bucketsOf(tracker, "b")).toEqual([0.04, 0.04, 0.04]);
});

test("m63: every level is visited, level 0 included — a report changes the level-0 bucket; stats carry L indexes", () => {
  const { tracker } = localTracker({ l: 4 });
  tracker.reportOutcome("a", "failure");
  const stats = statsOf(tracker.registerRequest("a"));
  expect(stats.bucketProbabilities[0]).toBe(0.04);
  expect(stats.bucketProbabilities).toEqual([0.04, 0.04, 0.04, 0.04]);
  expect(stats.bucketIndexes).toHaveLength(4);
});

test("m64: a success never increases p", () => {
  const { tracker } = localTracker({ lambda: 0 });
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual([0, 0, 0]);
  report(tracker, "a", "failure", 5);
  const before = bucketsOf(tracker, "a")[0] as number;
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")[0]).toBeLessThan(before);
});

test("m65: registers and reports reach both structures — the promoted secondary is warm, and a register draws twice", () => {
  const draws = countingRandom(0.5);
  const { tracker } = localTracker({}, { random: draws.random });
  report(tracker, "bad", "failure", 30);
  tracker.registerRequest("bad");
  expect(draws.calls).toBe(2);
  tracker.rotate();
  expect(bucketsOf(tracker, "bad")).toEqual([1, 1, 1]);
});

test("m66: rotation is main ← secondary, secondary ← new — a flow penalised before one rotation is still throttled", () => {
  const { tracker } = localTracker();
  report(tracker, "bad", "failure", 30);
  tracker.rotate();
  expect(tracker.structureIds).toEqual({ main: 2, secondary: 3 });
  expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
});

test("m67: the CalculateL term is 1 − (1 − 1/B)^Mbad (swapping B and Mbad gives 213340)", () => {
  expect(calculateL(1000, 100, 1e-4)).toBe(4);
  expect(calculateL(1000, 100, 1e-4)).not.toBe(213_340);
  expect(generateTunedStructureConfig(1000, 2, 25).l).toBe(14);
});

test("m68 (equivalent): an invalid config makes the constructor throw, never return something unusable", () => {
  const time = new FakeTime(0);
  let built: FairnessTracker | undefined;
  expect(() => {
    built = new FairnessTracker(
      { ...defaultFairnessTrackerConfig(), pi: 2 },
      { timers: time.timers },
    );
  }).toThrow(FairnessTrackerError);
  expect(built).toBeUndefined();
});

test("m69: close() stops the ticker", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  tracker.close();
  expect(time.activeIntervals).toBe(0);
  time.tick(5000);
  expect(tracker.structureIds.main).toBe(1);
});

test("m70: fresh buckets start at p = 0 — any flow's first request has pFinal 0", () => {
  const { tracker } = localTracker({ finalProbabilityFunction: meanFinalProbability });
  for (const id of ["a", "b", "steady-000", ""]) {
    const stats = statsOf(tracker.registerRequest(id));
    expect(stats.finalProbability).toBe(0);
    expect(stats.bucketProbabilities).toEqual([0, 0, 0]);
  }
});

test("m71: the ms → s divisor is 1000, not 1024 — adjust(1, 0.1, 100) = e^−0.01", () => {
  expect(adjustProbability(1, 0.1, 100)).toBe(0.99004983374916811);
});

test("m72: the bucket index is h % M, not M − 1 − (h % M)", () => {
  const { tracker } = localTracker({ l: 4, m: 1000 }, { seeds: [4294967295, 0] });
  expect(statsOf(tracker.registerRequest("aggressive-007")).bucketIndexes).toEqual([
    160, 35, 206, 81,
  ]);
});

test("m73: the upper clamp is exactly 1 — a saturated flow is throttled with probability 1", () => {
  const { tracker } = localTracker({}, { random: () => 1 - 2 ** -53 });
  report(tracker, "bad", "failure", 40);
  const decision = tracker.registerRequest("bad");
  expect(statsOf(decision).finalProbability).toBe(1);
  expect(decision.shouldThrottle).toBe(true);
});

test("m74: Pi = 1 is rejected", () => {
  expect(() => localTracker({ pi: 1, pd: 0.5 })).toThrow(
    "must <=1, found Pi: 1.000000 and Pd: 0.500000",
  );
});

test("m75: λ is not scaled down — adjust(1, 0.01, 100 s) = 1/e", () => {
  expect(adjustProbability(1, 0.01, 100_000)).toBe(0.36787944117144233);
});

test("m76: mean has no epsilon — mean([0, 0, 0]) = 0, so the flow is never throttled", () => {
  expect(meanFinalProbability([0, 0, 0])).toBe(0);
  const { tracker } = localTracker(
    { finalProbabilityFunction: meanFinalProbability },
    { random: () => Number.MIN_VALUE },
  );
  expect(tracker.registerRequest("a").shouldThrottle).toBe(false);
});

test("m77: min starts at 1 — min([1, 1, 1]) = 1, not 0.999", () => {
  expect(minFinalProbability([1, 1, 1])).toBe(1);
});

test("m78: the ticker period is rotationFrequencyMs, not twice it", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  expect(time.nextDueInMs).toBe(1000);
  time.tick(999);
  expect(tracker.structureIds.main).toBe(1);
  time.tick(1);
  expect(tracker.structureIds.main).toBe(2);
});

test("m79: stats.finalProbability is the raw pFinal of the decision (0.3982056865255148), not rounded", () => {
  const { tracker, time } = localTracker();
  for (let i = 1; i <= 10; i++) {
    time.set(i * 100);
    tracker.reportOutcome("client_id", "failure");
  }
  expect(statsOf(tracker.registerRequest("client_id")).finalProbability).toBe(0.3982056865255148);
});

test("m80: pi = 1/tolerable exactly (pi·25 = 1) and pd = 0.001·pi", () => {
  const config = generateTunedStructureConfig(1000, 1000, 25);
  expect(config.pi * 25).toBe(1);
  expect(config.pd).toBe(0.001 * config.pi);
  expect(generateTunedStructureConfig(1000, 1000, 40).pi).toBe(1 / 40);
});
