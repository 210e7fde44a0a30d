// FAIR-SPEC §5.1 and §13.4: Go's adjustProbability, and the Exp it relies on.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
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
