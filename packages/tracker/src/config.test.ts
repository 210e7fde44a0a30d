// docs/fair-spec.md §3, §11 and §13.6: validation, in Go's order and wording, plus the port's
// stricter checks (each a documented deviation).

import { FakeTime } from "@fair/testing";
import { describe, expect, test } from "vitest";
import { localTracker } from "../test/helpers.js";
import {
  defaultFairnessTrackerConfig,
  FairnessTracker,
  type FairnessTrackerConfig,
  FairnessTrackerError,
  generateTunedStructureConfig,
} from "./index.js";

const time = new FakeTime(0);
const options = { now: time.now, timers: time.timers, murmurSeed: () => 1 };

function build(overrides: Partial<FairnessTrackerConfig>): FairnessTracker {
  return new FairnessTracker({ ...defaultFairnessTrackerConfig(), ...overrides }, options);
}

function problem(overrides: Partial<FairnessTrackerConfig>): string {
  try {
    build(overrides).close();
  } catch (error) {
    expect(error).toBeInstanceOf(FairnessTrackerError);
    expect((error as FairnessTrackerError).code).toBe("invalid_config");
    return (error as Error).message;
  }
  return "ok";
}

const wrapped = (inner: string) =>
  `Failed to create a structure: The input config failed validation: ${inner}`;

describe("Go's checks (§3), in order", () => {
  test("13.6: {L:1, M:1, Pi:.1, Pd:.1} — Pd must be smaller than Pi", () => {
    expect(problem({ l: 1, m: 1, pi: 0.1, pd: 0.1 })).toBe(
      wrapped("the value of Pd is expected to be smaller than Pi"),
    );
  });

  test("13.6: {Pi:1, Pd:.5} — the upper bound, with Go's %f formatting", () => {
    expect(problem({ pi: 1, pd: 0.5 })).toBe(
      wrapped("the values of Pi and Pd must <=1, found Pi: 1.000000 and Pd: 0.500000"),
    );
  });

  test("13.6: {Pi:.999, Pd:.998} is accepted", () => {
    expect(problem({ pi: 0.999, pd: 0.998 })).toBe("ok");
  });

  test("13.6: {Pi:.2, Pd:0} — both must be > 0", () => {
    expect(problem({ pi: 0.2, pd: 0 })).toBe(
      wrapped("the values of Pi and Pd must >0, found Pi: 0.200000 and Pd: 0.000000"),
    );
  });

  test("12: Pd = .15, Pi = .1 is an error; Pd = .1, Pi = .15 is fine", () => {
    expect(problem({ l: 2, m: 24, pi: 0.1, pd: 0.15 })).toContain("smaller than Pi");
    expect(problem({ l: 2, m: 24, pi: 0.15, pd: 0.1 })).toBe("ok");
  });

  test("L and M must be at least 1, and the first failing check wins", () => {
    expect(problem({ l: 0, m: 5, pi: 0, pd: 0 })).toBe(
      wrapped("the values of L and M must be at least 1, found L: 0 and M: 5"),
    );
    expect(problem({ m: 0 })).toContain("found L: 3 and M: 0");
  });

  test("Gen(…, tolerable = 1) gives pi = 1, which validation refuses (kept from Go, §11.7)", () => {
    expect(() => new FairnessTracker(generateTunedStructureConfig(1000, 1000, 1), options)).toThrow(
      "must <=1, found Pi: 1.000000",
    );
  });

  test("12: a missing config is 'Configuration cannot be nil'", () => {
    const missing = null as unknown as FairnessTrackerConfig;
    expect(() => new FairnessTracker(missing, options)).toThrow("Configuration cannot be nil");
  });
});

describe("the port's stricter checks (§11, deviations)", () => {
  test("13.6 and §11.2: Pi = NaN passes every Go check (a quirk); the port refuses it", () => {
    expect(problem({ pi: Number.NaN, pd: 0.1 })).toBe(
      wrapped("the values of Pi and Pd must be numbers, found Pi: NaN and Pd: 0.100000"),
    );
    expect(problem({ pd: Number.NaN })).toContain("must be numbers");
  });

  test("§11.2: a negative, NaN or infinite λ is refused; λ = 0 is fine", () => {
    for (const lambda of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(problem({ lambda })).toContain("the value of Lambda must be a finite number >= 0");
    }
    expect(problem({ lambda: 0 })).toBe("ok");
  });

  test("§11.3: a missing final function is refused at construction, not at the first request", () => {
    const finalProbabilityFunction =
      undefined as unknown as FairnessTrackerConfig["finalProbabilityFunction"];
    expect(problem({ finalProbabilityFunction })).toContain(
      "FinalProbabilityFunction must be a function",
    );
  });

  test("§11.4: a rotation period ≤ 0 (Go's NewTicker panics) or past the timer limit is refused", () => {
    for (const rotationFrequencyMs of [0, -5, Number.NaN, 2 ** 31]) {
      expect(problem({ rotationFrequencyMs })).toContain("RotationFrequency must be > 0");
    }
  });

  test("L and M must be whole uint32s (Go's type) and L × M must fit in memory", () => {
    expect(problem({ l: 2.5 })).toContain("must be integers below 2^32");
    expect(problem({ m: Number.NaN })).toContain("must be integers below 2^32");
    expect(problem({ m: 2 ** 32 })).toContain("must be integers below 2^32");
    expect(problem({ l: 4, m: 2 ** 30 })).toContain("L × M must be at most");
  });

  test("includeStats must be a boolean", () => {
    const includeStats = 1 as unknown as boolean;
    expect(problem({ includeStats })).toContain("IncludeStats must be a boolean");
  });

  test("bad options are refused with invalid_option, naming the field", () => {
    const config = defaultFairnessTrackerConfig();
    const bad = (extra: object) => () =>
      new FairnessTracker(config, { ...options, ...extra } as never);
    expect(bad({ now: 5 })).toThrow("FairnessTrackerOptions.now must be a function");
    expect(bad({ timers: {} })).toThrow("FairnessTrackerOptions.timers");
    expect(bad({ signal: {} })).toThrow("FairnessTrackerOptions.signal");
    expect(bad({ onDecision: "count" })).toThrow(
      "FairnessTrackerOptions.onDecision must be a function",
    );
    expect(bad({ distributed: { trackerId: 7 } })).toThrow("distributed.trackerId");
    expect(bad({ distributed: { trackerId: "t", link: {} } })).toThrow("distributed.link");
  });
});

describe("validation refuses configs that would break FAIR (§14)", () => {
  // docs/fair-spec.md §14 item 8 (mutant m48).
  test("Pi == Pd is rejected", () => {
    expect(() => localTracker({ pi: 0.1, pd: 0.1 })).toThrow(
      "the value of Pd is expected to be smaller than Pi",
    );
  });

  // docs/fair-spec.md §14 item 13 (mutant m53).
  test("Pi = 0 and Pd = 0 are rejected", () => {
    expect(() => localTracker({ pi: 0, pd: 0 })).toThrow("must >0");
    expect(() => localTracker({ pd: 0 })).toThrow("must >0, found Pi: 0.040000 and Pd: 0.000000");
  });

  // docs/fair-spec.md §14 item 34 (mutant m74).
  test("Pi = 1 is rejected", () => {
    expect(() => localTracker({ pi: 1, pd: 0.5 })).toThrow(
      "must <=1, found Pi: 1.000000 and Pd: 0.500000",
    );
  });

  // docs/fair-spec.md §14 item 28 (mutant m68, equivalent); the intended property is asserted anyway.
  test("an invalid config makes the constructor throw, never return something unusable", () => {
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
});
