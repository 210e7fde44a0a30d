// docs/fair-spec.md §5.1 and §13.4: Go's adjustProbability, and the Exp it relies on; and how a
// tracker's buckets decay between visits (the §14 items on time and units).
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { bucketsOf, localTracker, report } from "../test/helpers.js";
import { adjustProbability, clamp01 } from "./decay.js";
import { goExp } from "./go-exp.js";

describe("adjustProbability", () => {
  test.each([
    [0.8, 0, 10_000, 0.8],
    [0.6, 0.5, 0, 0.6],
    [0.9, 1, 1e6, 0],
    [0, 1, 5000, 0],
    [1, 0.1, 100, 0.99004983374916811],
    [1, 0.01, 1000, 0.99004983374916811],
    [1, 0.01, 100_000, 0.36787944117144233],
    [0.5, 0.01, 1, 0.49999500002499991],
    [0.04, 0.01, 2500, 0.039012396481133305],
  ])("13.4: adjust(%d, %d, %d ms) = %d", (p, lambda, dt, expected) => {
    expect(adjustProbability(p, lambda, dt)).toBe(expected);
  });

  test("13.4: Go's wrapped negative interval (2^64 − 6 ms) wipes the bucket at λ > 0 and not at λ = 0", () => {
    expect(adjustProbability(1, 0.01, 2 ** 64 - 6)).toBe(0);
    expect(adjustProbability(1, 0, 2 ** 64 - 6)).toBe(1);
  });

  test("12: at λ = 0 and at dt = 0 nothing changes; e^-0.01 after a second at 0.01", () => {
    expect(adjustProbability(0.37, 0, 123_456)).toBe(0.37);
    expect(adjustProbability(0.37, 0.01, 0)).toBe(0.37);
    expect(adjustProbability(1, 0.01, 1000)).toBe(goExp(-0.01));
  });

  test("12: clamping to [0, 1]: 0.9+0.2 → 1, 0.1−0.2 → 0, 1+0.2 → 1, 0−0.2 → 0; NaN propagates", () => {
    expect(clamp01(0.9 + 0.2)).toBe(1);
    expect(clamp01(0.1 - 0.2)).toBe(0);
    expect(clamp01(1 + 0.2)).toBe(1);
    expect(clamp01(0 - 0.2)).toBe(0);
    expect(clamp01(Number.NaN)).toBeNaN();
  });

  // docs/fair-spec.md §14 item 21 (mutant m61).
  test("λ is per second and not scaled up: adjust(1, 0.01, 1000) = e^−0.01", () => {
    expect(adjustProbability(1, 0.01, 1000)).toBe(0.99004983374916811);
  });

  // docs/fair-spec.md §14 item 31 (mutant m71).
  test("the ms → s divisor is 1000, not 1024: adjust(1, 0.1, 100) = e^−0.01", () => {
    expect(adjustProbability(1, 0.1, 100)).toBe(0.99004983374916811);
  });

  // docs/fair-spec.md §14 item 35 (mutant m75).
  test("λ is not scaled down: adjust(1, 0.01, 100 s) = 1/e", () => {
    expect(adjustProbability(1, 0.01, 100_000)).toBe(0.36787944117144233);
  });
});

describe("decay between a tracker's visits", () => {
  // docs/fair-spec.md §14 item 1 (mutant m41).
  test("decay uses the exact elapsed ms: same-ms visits change nothing, Δ ms decays by exp(−λΔ/1000)", () => {
    const { tracker, time } = localTracker();
    tracker.reportOutcome("a", "failure");
    expect(bucketsOf(tracker, "a")).toEqual([0.04, 0.04, 0.04]);
    expect(bucketsOf(tracker, "a")).toEqual([0.04, 0.04, 0.04]);
    time.tick(2500);
    expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(0.039012396481133305));
  });

  // docs/fair-spec.md §14 item 3 (mutant m43).
  test("the clock is read in milliseconds: a 500 ms gap decays by exp(−λ·0.5)", () => {
    const { tracker, time } = localTracker({ lambda: 1 });
    tracker.reportOutcome("a", "failure");
    time.tick(500);
    const expected = adjustProbability(0.04, 1, 500);
    expect(expected).toBeCloseTo(0.04 * Math.exp(-0.5), 15);
    expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(expected));
  });

  // docs/fair-spec.md §14 item 11 (mutant m51).
  test("decay uses fractional seconds: adjust(0.9, 1, 100 ms) = 0.9·e^−0.1, not 0.9", () => {
    expect(adjustProbability(0.9, 1, 100)).toBeCloseTo(0.9 * Math.exp(-0.1), 15);
    const { tracker, time } = localTracker({ pi: 0.45, pd: 0.1, lambda: 1 });
    report(tracker, "a", "failure", 2);
    time.tick(100);
    expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(adjustProbability(0.9, 1, 100)));
  });

  // docs/fair-spec.md §14 item 20 (mutant m60).
  test("reportOutcome refreshes the bucket's time: a register ε ms after a report decays over ε only", () => {
    const { tracker, time } = localTracker({ lambda: 1 });
    time.tick(10_000);
    tracker.reportOutcome("a", "failure");
    time.tick(3);
    expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(adjustProbability(0.04, 1, 3)));
  });

  // docs/fair-spec.md §14 item 22 (mutant m62, which no behaviour can reveal: fresh buckets are 0
  // whatever their timestamp); the intended property is asserted anyway.
  test("buckets are stamped in ms at creation: a first visit long after reads exactly 0, and a failure gives exactly Pi", () => {
    const { tracker, time } = localTracker({ lambda: 0.5 });
    time.tick(123_456);
    expect(bucketsOf(tracker, "a")).toEqual([0, 0, 0]);
    tracker.reportOutcome("b", "failure");
    expect(bucketsOf(tracker, "b")).toEqual([0.04, 0.04, 0.04]);
  });
});

describe("goExp, Go's amd64 math.Exp", () => {
  test("gives Go's e^-0.6 (0.5488116360940264), one ulp below V8's Math.exp", () => {
    expect(goExp(-0.6)).toBe(0.5488116360940264);
  });

  test("special cases: NaN, ±Inf, overflow, underflow, 0", () => {
    expect(goExp(Number.NaN)).toBeNaN();
    expect(goExp(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(goExp(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(goExp(710)).toBe(Number.POSITIVE_INFINITY);
    expect(goExp(-1e300)).toBe(0);
    expect(goExp(0)).toBe(1);
    expect(goExp(-0)).toBe(1);
    expect(goExp(1)).toBe(Math.E);
  });

  test("stays within two ulps of Math.exp over the range FAIR uses", () => {
    fc.assert(
      fc.property(fc.double({ min: -700, max: 700, noNaN: true }), (x) => {
        const expected = Math.exp(x);
        expect(Math.abs(goExp(x) - expected)).toBeLessThanOrEqual(expected * 4.5e-16);
      }),
      { numRuns: 20_000 },
    );
  });
});
