// The Go tracker tests (docs/fair-spec.md §12), through the public API on fake time.

import { FakeTime } from "@fair/testing";
import { afterEach, describe, expect, test, vi } from "vitest";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";
import {
  defaultFairnessTrackerConfig,
  defaultTrackerOptions,
  FairnessTracker,
  FairnessTrackerBuilder,
  type FairnessTrackerError,
  generateTunedStructureConfig,
  meanFinalProbability,
} from "./index.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("decisions", () => {
  test("12: default config — 1 failure and 30 more throttle; 30,000 successes later, no throttle", () => {
    const { tracker } = localTracker({ includeStats: false });
    expect(tracker.registerRequest("client").shouldThrottle).toBe(false);
    report(tracker, "client", "failure", 31);
    expect(tracker.registerRequest("client").shouldThrottle).toBe(true);
    report(tracker, "client", "success", 30_000);
    expect(tracker.registerRequest("client").shouldThrottle).toBe(false);
  });

  test("12: end to end (L 2, M 24, Pi .15, Pd .1, λ 0, mean): fine, fine after a success, throttled after 1000 failures", () => {
    const { tracker } = localTracker({
      l: 2,
      m: 24,
      pi: 0.15,
      pd: 0.1,
      lambda: 0,
      finalProbabilityFunction: meanFinalProbability,
    });
    expect(tracker.registerRequest("hello_world").shouldThrottle).toBe(false);
    tracker.reportOutcome("hello_world", "success");
    expect(tracker.registerRequest("hello_world").shouldThrottle).toBe(false);
    report(tracker, "hello_world", "failure", 1000);
    expect(tracker.registerRequest("hello_world").shouldThrottle).toBe(true);
  });

  test("12: the final function is called once per structure with L probabilities", () => {
    const lengths: number[] = [];
    const { tracker } = localTracker({
      l: 5,
      finalProbabilityFunction: (probabilities) => {
        lengths.push(probabilities.length);
        return 0;
      },
    });
    tracker.registerRequest("x");
    expect(lengths).toEqual([5, 5]);
  });

  test("12: NewStructure builds L levels of M buckets: L indexes per decision, each below M", () => {
    const { tracker } = localTracker({ l: 6, m: 17 });
    for (let i = 0; i < 200; i++) {
      const { bucketIndexes } = statsOf(tracker.registerRequest(`id-${i}`));
      expect(bucketIndexes).toHaveLength(6);
      for (const column of bucketIndexes) expect(column).toBeGreaterThanOrEqual(0);
      for (const column of bucketIndexes) expect(column).toBeLessThan(17);
    }
  });

  test("12: 100 interleaved callers reporting failures keep a saturated bucket at exactly 1", () => {
    const { tracker } = localTracker({ pi: 0.2, pd: 0.1, lambda: 0 });
    for (let caller = 0; caller < 100; caller++) tracker.reportOutcome("shared", "failure");
    expect(bucketsOf(tracker, "shared")).toEqual([1, 1, 1]);
    for (let caller = 0; caller < 100; caller++) tracker.reportOutcome("shared", "success");
    expect(bucketsOf(tracker, "shared")).toEqual([0, 0, 0]);
  });
  test("§11.10: stats.bucketProbabilities is the very array the final function received", () => {
    const { tracker } = localTracker({
      finalProbabilityFunction: (probabilities) => {
        probabilities[0] = 0.75;
        return 0.25;
      },
    });
    const stats = statsOf(tracker.registerRequest("a"));
    expect(stats.bucketProbabilities).toEqual([0.75, 0, 0]);
    expect(stats.finalProbability).toBe(0.25);
  });

  test("12: the default clock reads Unix ms and the default draw lies in [0, 1)", () => {
    const before = Date.now();
    const now = defaultTrackerOptions.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
    for (let i = 0; i < 1000; i++) {
      const draw = defaultTrackerOptions.random();
      expect(draw >= 0 && draw < 1).toBe(true);
    }
  });
});

describe("rotation", () => {
  test("12: a ticking rotation keeps secondary.id − main.id = 1", () => {
    const { tracker, time } = localTracker({ rotationFrequencyMs: 1000 });
    for (let k = 1; k <= 5; k++) {
      time.tick(1000);
      expect(tracker.structureIds).toEqual({ main: k + 1, secondary: k + 2 });
    }
  });

  test("§8: penalties are forgotten between R and 2R: after two rotations the flow is free again", () => {
    const { tracker } = localTracker();
    report(tracker, "bad", "failure", 30);
    tracker.rotate();
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
    tracker.rotate();
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(false);
  });

  test("12: a failing structure construction — first, second or at rotation", () => {
    const failOn = (call: number) => {
      let calls = 0;
      return () => {
        calls++;
        if (calls === call) throw new Error("no seed today");
        return calls;
      };
    };
    const time = new FakeTime(0);
    const config = { ...defaultFairnessTrackerConfig(), rotationFrequencyMs: 1000 };
    for (const call of [1, 2]) {
      expect(
        () =>
          new FairnessTracker(config, {
            now: time.now,
            timers: time.timers,
            murmurSeed: failOn(call),
          }),
      ).toThrow("Failed to create a structure: no seed today");
    }
    const errors: FairnessTrackerError[] = [];
    const tracker = new FairnessTracker(config, {
      now: time.now,
      timers: time.timers,
      murmurSeed: failOn(3),
      onError: (error) => errors.push(error),
    });
    time.tick(1000);
    expect(errors.map((error) => error.code)).toEqual(["rotation_failed"]);
    expect(errors[0]?.message).toBe(
      "failed to create a structure during rotation: Failed to create a structure: no seed today",
    );
    // Rotation ends for good, as Go's goroutine returns.
    expect(time.activeIntervals).toBe(0);
    time.tick(5000);
    expect(tracker.structureIds).toEqual({ main: 1, secondary: 2 });
  });

  test("a seed source returning something other than a uint32 fails construction", () => {
    const time = new FakeTime(0);
    for (const seed of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expect(
        () =>
          new FairnessTracker(defaultFairnessTrackerConfig(), {
            now: time.now,
            timers: time.timers,
            murmurSeed: () => seed,
          }),
      ).toThrow("not a uint32");
    }
  });

  test("a manual rotate() that fails leaves both structures in place", () => {
    let calls = 0;
    const time = new FakeTime(0);
    const tracker = new FairnessTracker(defaultFairnessTrackerConfig(), {
      now: time.now,
      timers: time.timers,
      murmurSeed: () => (++calls > 2 ? Number.NaN : calls),
    });
    expect(() => tracker.rotate()).toThrow("not a uint32");
    expect(tracker.structureIds).toEqual({ main: 1, secondary: 2 });
  });

  test("12: the real timers rotate at the configured period (fake timers, no sleeping)", () => {
    vi.useFakeTimers();
    const tracker = new FairnessTracker({
      ...defaultFairnessTrackerConfig(),
      rotationFrequencyMs: 1000,
    });
    vi.advanceTimersByTime(999);
    expect(tracker.structureIds.main).toBe(1);
    vi.advanceTimersByTime(1);
    expect(tracker.structureIds.main).toBe(2);
    tracker.close();
    vi.advanceTimersByTime(5000);
    expect(tracker.structureIds.main).toBe(2);
  });
});

describe("close", () => {
  test("12 and §11.5: close() stops the ticker and is idempotent", () => {
    const { tracker, time } = localTracker();
    expect(time.activeIntervals).toBe(1);
    tracker.close();
    tracker.close();
    expect(time.activeIntervals).toBe(0);
    expect(tracker.closed).toBe(true);
  });

  test("aborting the signal closes the tracker; an aborted signal closes it at once", () => {
    const controller = new AbortController();
    const { tracker, time } = localTracker({}, { options: { signal: controller.signal } });
    controller.abort();
    expect(tracker.closed).toBe(true);
    expect(time.activeIntervals).toBe(0);
    const { tracker: late } = localTracker({}, { options: { signal: AbortSignal.abort() } });
    expect(late.closed).toBe(true);
  });

  test("a closed tracker still answers on its state, as Go's does", () => {
    const { tracker } = localTracker();
    report(tracker, "bad", "failure", 30);
    tracker.close();
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
  });
});

describe("builder", () => {
  test("12: the setters are applied (L 10, M 10, rotation 1 s)", () => {
    const time = new FakeTime(0);
    const tracker = new FairnessTrackerBuilder()
      .setL(10)
      .setM(10)
      .setRotationFrequencyMs(1000)
      .setPi(0.5)
      .setPd(0.25)
      .setLambda(0.5)
      .setIncludeStats(true)
      .setFinalProbabilityFunction(meanFinalProbability)
      .build({ now: time.now, timers: time.timers });
    expect(tracker.config).toMatchObject({
      l: 10,
      m: 10,
      rotationFrequencyMs: 1000,
      pi: 0.5,
      pd: 0.25,
      lambda: 0.5,
      includeStats: true,
      finalProbabilityFunction: meanFinalProbability,
    });
    expect(time.nextDueInMs).toBe(1000);
  });

  test("12: buildWithConfig(Gen(10, 10, 10)) has L 4 and M 10; buildWithDefaultConfig ignores the setters", () => {
    const builder = new FairnessTrackerBuilder().setL(7);
    expect(builder.buildWithConfig(generateTunedStructureConfig(10, 10, 10)).config).toMatchObject({
      l: 4,
      m: 10,
    });
    expect(builder.buildWithDefaultConfig().config.l).toBe(3);
    expect(builder.build().config.l).toBe(7);
  });

  test("12: buildWithConfig(nil) is 'Configuration cannot be nil'", () => {
    const builder = new FairnessTrackerBuilder();
    expect(() => builder.buildWithConfig(undefined as never)).toThrow(
      "Configuration cannot be nil",
    );
  });
});
