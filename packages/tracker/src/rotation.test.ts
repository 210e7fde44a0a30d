// Rotation in local mode (docs/fair-spec.md §8): the ticker's period, main ← secondary and
// secondary ← new, structure ids, both structures kept warm, and close() stopping it all.
// Each test is one item of §14 and fails for the bug its mutant planted.
import { afterEach, expect, test, vi } from "vitest";
import { bucketsOf, localTracker, report } from "../test/helpers.js";
import { countingRandom } from "../test/sources.js";
import { defaultFairnessTrackerConfig, FairnessTracker } from "./index.js";

afterEach(() => {
  vi.useRealTimers();
});

// docs/fair-spec.md §14 item 7 (mutant m47).
test("the rotation loop rotates on a tick and stops on close()", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  time.tick(1000);
  expect(tracker.structureIds.main).toBe(2);
  tracker.close();
  time.tick(10_000);
  expect(tracker.structureIds.main).toBe(2);
});

// docs/fair-spec.md §14 item 16 (mutant m56).
test("structure ids go up by exactly 1 per rotation: after k ticks, main k+1 and secondary k+2", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 500 });
  time.tick(500 * 7);
  expect(tracker.structureIds).toEqual({ main: 8, secondary: 9 });
});

// docs/fair-spec.md §14 item 18 (mutant m58).
test("the default timers fire at the configured period, so rotation happens", () => {
  vi.useFakeTimers();
  const tracker = new FairnessTracker({
    ...defaultFairnessTrackerConfig(),
    rotationFrequencyMs: 60_000,
  });
  vi.advanceTimersByTime(3 * 60_000);
  expect(tracker.structureIds).toEqual({ main: 4, secondary: 5 });
  tracker.close();
});

// docs/fair-spec.md §14 item 25 (mutant m65).
test("registers and reports reach both structures: the promoted secondary is warm, and a register draws twice", () => {
  const draws = countingRandom(0.5);
  const { tracker } = localTracker({}, { random: draws.random });
  report(tracker, "bad", "failure", 30);
  tracker.registerRequest("bad");
  expect(draws.calls).toBe(2);
  tracker.rotate();
  expect(bucketsOf(tracker, "bad")).toEqual([1, 1, 1]);
});

// docs/fair-spec.md §14 item 26 (mutant m66).
test("rotation is main ← secondary, secondary ← new: a flow penalised before one rotation is still throttled", () => {
  const { tracker } = localTracker();
  report(tracker, "bad", "failure", 30);
  tracker.rotate();
  expect(tracker.structureIds).toEqual({ main: 2, secondary: 3 });
  expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
});

// docs/fair-spec.md §14 item 29 (mutant m69).
test("close() stops the ticker", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  tracker.close();
  expect(time.activeIntervals).toBe(0);
  time.tick(5000);
  expect(tracker.structureIds.main).toBe(1);
});

// docs/fair-spec.md §14 item 38 (mutant m78).
test("the ticker period is rotationFrequencyMs, not twice it", () => {
  const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
  expect(time.nextDueInMs).toBe(1000);
  time.tick(999);
  expect(tracker.structureIds.main).toBe(1);
  time.tick(1);
  expect(tracker.structureIds.main).toBe(2);
});
