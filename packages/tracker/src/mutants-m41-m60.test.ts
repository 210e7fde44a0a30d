// FAIR-SPEC §14, items 1–20 (mutants m41–m60): one test per item, each failing for the bug
// the mutant planted. Equivalent mutants (m44, m49) assert the intended property anyway.

import { FakeTime } from "@fair/testing";
import { afterEach, expect, test, vi } from "vitest";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";
import { adjustProbability } from "./decay.js";
import {
  defaultFairnessTrackerConfig,
  FairnessTracker,
  FairnessTrackerBuilder,
  generateTunedStructureConfig,
  meanFinalProbability,
} from "./index.js";

afterEach(() => {
  vi.useRealTimers();
});

test("m41: decay uses the exact elapsed ms — same-ms visits change nothing, Δ ms decays by exp(−λΔ/1000)", () => {
  const { tracker, time } = localTracker();
  tracker.reportOutcome("a", "failure");
  expect(bucketsOf(tracker, "a")).toEqual([0.04, 0.04, 0.04]);
  expect(bucketsOf(tracker, "a")).toEqual([0.04, 0.04, 0.04]);
  time.tick(2500);
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(0.039012396481133305));
});

test("m42: a success subtracts Pd, not Pi", () => {
  const { tracker } = localTracker({ pi: 0.25, pd: 0.001, lambda: 0 });
  report(tracker, "a", "failure", 2);
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(0.5 - 0.001));
});

test("m43: the clock is read in milliseconds — a 500 ms gap decays by exp(−λ·0.5)", () => {
  const { tracker, time } = localTracker({ lambda: 1 });
  tracker.reportOutcome("a", "failure");
  time.tick(500);
  const expected = adjustProbability(0.04, 1, 500);
  expect(expected).toBeCloseTo(0.04 * Math.exp(-0.5), 15);
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(expected));
});

test("m44 (equivalent): p + Pi > 1 gives exactly 1, and from 1 a success gives 1 − Pd", () => {
  const { tracker } = localTracker({ pi: 0.3, pd: 0.01, lambda: 0 });
  report(tracker, "a", "failure", 4);
  expect(bucketsOf(tracker, "a")).toEqual([1, 1, 1]);
  tracker.reportOutcome("a", "success");
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(1 - 0.01));
});

test("m45: the default final function is min — buckets [1, 0, 0] give pFinal 0", () => {
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

test("m46: setIncludeStats(true) really turns stats on", () => {
  const time = new FakeTime(0);
  const on = new FairnessTrackerBuilder().setIncludeStats(true).build({ timers: time.timers });
  const off = new FairnessTrackerBuilder().build({ timers: time.timers });
  expect(on.registerRequest("a").stats).toBeDefined();
  expect(off.registerRequest("a").stats).toBeUndefined();
});

test("m47: the rotation loop rotates on a tick and stops on close()", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  time.tick(1000);
  expect(tracker.structureIds.main).toBe(2);
  tracker.close();
  time.tick(10_000);
  expect(tracker.structureIds.main).toBe(2);
});

test("m48: validation rejects Pi == Pd", () => {
  expect(() => localTracker({ pi: 0.1, pd: 0.1 })).toThrow(
    "the value of Pd is expected to be smaller than Pi",
  );
});

test("m49 (equivalent): exactly n level hashes, h_0 = the low 32 bits — L indexes, the first hash1 % M", () => {
  const { tracker } = localTracker({ l: 3, m: 1000 }, { seeds: [5, 6] });
  expect(statsOf(tracker.registerRequest("hello world")).bucketIndexes).toEqual([399, 340, 577]);
  expect(2583984399 % 1000).toBe(399);
});

test("m50: mean is sum/len for len ≥ 2 — mean([0.2, 0.4]) = 0.3, not 0.6", () => {
  expect(meanFinalProbability([0.2, 0.4])).toBeCloseTo(0.3, 15);
  expect(meanFinalProbability([0.2, 0.4])).toBe((0.2 + 0.4) / 2);
});

test("m51: decay uses fractional seconds — adjust(0.9, 1, 100 ms) = 0.9·e^−0.1, not 0.9", () => {
  expect(adjustProbability(0.9, 1, 100)).toBeCloseTo(0.9 * Math.exp(-0.1), 15);
  const { tracker, time } = localTracker({ pi: 0.45, pd: 0.1, lambda: 1 });
  report(tracker, "a", "failure", 2);
  time.tick(100);
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(adjustProbability(0.9, 1, 100)));
});

test("m52: level hashes combine by addition mod 2^32, not XOR (13.2)", () => {
  const { tracker } = localTracker({ l: 5, m: 7 }, { seeds: [42, 0] });
  expect(statsOf(tracker.registerRequest("cl-0")).bucketIndexes).toEqual([4, 5, 3, 4, 5]);
  // With XOR, h_1 would be 1556324004 ^ hash2, not 687597244.
  expect(((1556324004 + 3426240536) >>> 0) % 7).toBe(5);
});

test("m53: validation rejects Pi = 0 and Pd = 0", () => {
  expect(() => localTracker({ pi: 0, pd: 0 })).toThrow("must >0");
  expect(() => localTracker({ pd: 0 })).toThrow("must >0, found Pi: 0.040000 and Pd: 0.000000");
});

test("m54: Mbad = ceil(expected · 0.001) — Gen(10, 10, 10).l is 4 (floor would give 3)", () => {
  expect(generateTunedStructureConfig(10, 10, 10).l).toBe(4);
});

test("m55: setL(1) is honoured — one level, one hash, no clamp to 3", () => {
  const time = new FakeTime(0);
  const tracker = new FairnessTrackerBuilder()
    .setL(1)
    .setIncludeStats(true)
    .build({ timers: time.timers });
  expect(tracker.config.l).toBe(1);
  expect(statsOf(tracker.registerRequest("a")).bucketIndexes).toHaveLength(1);
});

test("m56: structure ids go up by exactly 1 per rotation — after k ticks, main k+1 and secondary k+2", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 500 });
  time.tick(500 * 7);
  expect(tracker.structureIds).toEqual({ main: 8, secondary: 9 });
});

test("m57: calculateL uses ceil — Gen(100000, 1000, 25).l is 4 (floor would give 3)", () => {
  expect(generateTunedStructureConfig(100_000, 1000, 25).l).toBe(4);
});

test("m58: the default timers fire at the configured period, so rotation happens", () => {
  vi.useFakeTimers();
  const tracker = new FairnessTracker({
    ...defaultFairnessTrackerConfig(),
    rotationFrequencyMs: 60_000,
  });
  vi.advanceTimersByTime(3 * 60_000);
  expect(tracker.structureIds).toEqual({ main: 4, secondary: 5 });
  tracker.close();
});

test("m59: stats.bucketIndexes[l] is exactly h_l % M, with no offset (13.2)", () => {
  const { tracker } = localTracker({ l: 3, m: 1000 }, { seeds: [12345, 0] });
  expect(statsOf(tracker.registerRequest("client_id")).bucketIndexes).toEqual([739, 487, 939]);
});

test("m60: reportOutcome refreshes lastUpdated — a register ε ms after a report decays over ε only", () => {
  const { tracker, time } = localTracker({ lambda: 1 });
  time.tick(10_000);
  tracker.reportOutcome("a", "failure");
  time.tick(3);
  expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(adjustProbability(0.04, 1, 3)));
});
