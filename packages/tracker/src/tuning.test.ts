// docs/fair-spec.md §2 and §13.3: CalculateL, the tuned config and the defaults, as Go computes them.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  calculateL,
  defaultFairnessTrackerConfig,
  FairnessTrackerError,
  generateTunedStructureConfig,
  goPowInt,
  minFinalProbability,
} from "./index.js";

describe("calculateL", () => {
  test.each([
    [1000, 100, 1e-4, 4],
    [1000, 1, 1e-4, 2],
    [10, 1, 1e-4, 4],
    [100, 1, 1e-4, 3],
    [1000, 10, 1e-4, 2],
    [256, 100, 1e-4, 9],
    [4096, 100, 1e-4, 3],
    [1000, 1000, 1e-4, 21],
    [1000, 50, 1e-4, 4],
    [2, 1, 0.5, 1],
    [1000, 0, 1e-4, 0],
  ])("13.3: calculateL(%i, %i, %d) = %i", (b, mBad, p, expected) => {
    expect(calculateL(b, mBad, p)).toBe(expected);
  });

  test("13.3: degenerate inputs give 0, as Go's uint32(±Inf or NaN) does", () => {
    expect(calculateL(1, 1, 1e-4)).toBe(0);
    expect(calculateL(1000, 0, 1e-4)).toBe(0);
    expect(calculateL(1000, 1, 0)).toBe(0);
    expect(calculateL(1000, 1, 1)).toBe(0);
  });

  test("goPowInt is square-and-multiply: the borderline raw values round as in Go", () => {
    // Raw CalculateL values within 1e-13 of an integer (docs/fair-spec.md §2.2).
    const raw = (b: number, m: number) => Math.log(1e-4) / Math.log(1 - goPowInt(1 - 1 / b, m));
    expect(raw(1000, 100)).toBe(3.9164724947075427);
    expect(raw(10, 1)).toBe(3.9999999999999991);
    expect(raw(100, 1)).toBe(2.0000000000000004);
    expect(raw(1000, 1)).toBe(1.3333333333333335);
    expect(raw(1000, 10)).toBe(1.9980483965114486);
    expect(goPowInt(3, 0)).toBe(1);
    expect(goPowInt(2, 10)).toBe(1024);
    expect(goPowInt(0.5, 3)).toBe(0.125);
  });

  test("TEST_PLAN: L never decreases as mBad grows, never increases as B grows, never decreases as p shrinks", () => {
    const b = fc.integer({ min: 2, max: 5000 });
    const m = fc.integer({ min: 1, max: 3000 });
    const p = fc.double({ min: 1e-9, max: 0.5, noNaN: true });
    fc.assert(
      fc.property(b, m, p, (b1, m1, p1) => {
        // The plan's monotonicity is about the useful range: fewer bad flows than buckets
        // (past that, 1 − (1 − 1/B)^mBad rounds to 1 and L to 0) and L within uint32 (Go's
        // conversion wraps past 2^32).
        fc.pre(m1 + 1 < b1);
        const raw = Math.log(p1 / 2) / Math.log(1 - goPowInt(1 - 1 / b1, m1 + 1));
        fc.pre(raw < 2 ** 32 - 1);
        expect(calculateL(b1, m1 + 1, p1)).toBeGreaterThanOrEqual(calculateL(b1, m1, p1));
        expect(calculateL(b1 + 1, m1, p1)).toBeLessThanOrEqual(calculateL(b1, m1, p1));
        expect(calculateL(b1, m1, p1 / 2)).toBeGreaterThanOrEqual(calculateL(b1, m1, p1));
      }),
    );
  });
});

describe("generateTunedStructureConfig", () => {
  test.each([
    [1000, 1000, 25, 3],
    [10, 10, 10, 4],
    [200, 1000, 25, 3],
    [500, 1000, 25, 3],
    [110, 1000, 25, 3],
    [100_000, 1000, 25, 4],
    [1_000_000, 1000, 25, 21],
    [50_000, 256, 25, 6],
    [50_000, 8192, 25, 3],
    [0, 1000, 25, 3],
    [1000, 0, 25, 3],
    [1000, 1, 25, 3],
    [1000, 2, 25, 14],
  ])("13.3: Gen(%i, %i, %i) has L = %i", (expected, buckets, tolerable, l) => {
    const config = generateTunedStructureConfig(expected, buckets, tolerable);
    expect(config.l).toBe(l);
    expect(config.m).toBe(buckets);
  });

  test("13.3: pi = 1/tolerable and pd = 0.001 · pi, exactly", () => {
    expect(generateTunedStructureConfig(10, 10, 10)).toMatchObject({ pi: 0.1, pd: 0.0001 });
    expect(generateTunedStructureConfig(1000, 1000, 100)).toMatchObject({ pi: 0.01, pd: 1e-5 });
    expect(generateTunedStructureConfig(1000, 1000, 1).pi).toBe(1);
  });

  test("12: tolerable = 0 is an error with Go's message", () => {
    expect(() => generateTunedStructureConfig(1000, 1000, 0)).toThrow(
      "tolerableBadRequestsPerBadFlow must be greater than 0",
    );
    try {
      generateTunedStructureConfig(1000, 1000, 0);
    } catch (error) {
      expect(error).toBeInstanceOf(FairnessTrackerError);
      expect((error as FairnessTrackerError).code).toBe("invalid_argument");
    }
  });

  test("arguments outside uint32, which Go's types rule out, are refused", () => {
    expect(() => generateTunedStructureConfig(-1, 1000, 25)).toThrow(FairnessTrackerError);
    expect(() => generateTunedStructureConfig(1000, 1.5, 25)).toThrow(FairnessTrackerError);
    expect(() => generateTunedStructureConfig(1000, 1000, 2 ** 32)).toThrow(FairnessTrackerError);
  });
});

describe("defaultFairnessTrackerConfig", () => {
  test("12: is Gen(1000, 1000, 25): M 1000, L 3, pi·25 = 1, pd·25·1000 = 1, λ 0.01, 5 min, min", () => {
    const config = defaultFairnessTrackerConfig();
    expect(config).toEqual(generateTunedStructureConfig(1000, 1000, 25));
    expect(config).toMatchObject({
      m: 1000,
      l: 3,
      pi: 0.04,
      pd: 4e-5,
      lambda: 0.01,
      rotationFrequencyMs: 300_000,
      includeStats: false,
    });
    expect(config.pi * 25).toBe(1);
    expect(config.pd * 25 * 1000).toBe(1);
    expect(config.finalProbabilityFunction).toBe(minFinalProbability);
  });

  test("12: the default's generator cannot fail, so no Fatalf path exists; each call is a fresh frozen object", () => {
    const a = defaultFairnessTrackerConfig();
    expect(a).not.toBe(defaultFairnessTrackerConfig());
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe("the tuning formulas, term by term (§14)", () => {
  // docs/fair-spec.md §14 item 14 (mutant m54).
  test("Mbad = ceil(expected · 0.001): Gen(10, 10, 10).l is 4 (floor would give 3)", () => {
    expect(generateTunedStructureConfig(10, 10, 10).l).toBe(4);
  });

  // docs/fair-spec.md §14 item 17 (mutant m57).
  test("calculateL uses ceil: Gen(100000, 1000, 25).l is 4 (floor would give 3)", () => {
    expect(generateTunedStructureConfig(100_000, 1000, 25).l).toBe(4);
  });

  // docs/fair-spec.md §14 item 27 (mutant m67).
  test("the CalculateL term is 1 − (1 − 1/B)^Mbad (swapping B and Mbad gives 213340)", () => {
    expect(calculateL(1000, 100, 1e-4)).toBe(4);
    expect(calculateL(1000, 100, 1e-4)).not.toBe(213_340);
    expect(generateTunedStructureConfig(1000, 2, 25).l).toBe(14);
  });

  // docs/fair-spec.md §14 item 40 (mutant m80).
  test("pi = 1/tolerable exactly (pi·25 = 1) and pd = 0.001·pi", () => {
    const config = generateTunedStructureConfig(1000, 1000, 25);
    expect(config.pi * 25).toBe(1);
    expect(config.pd).toBe(0.001 * config.pi);
    expect(generateTunedStructureConfig(1000, 1000, 40).pi).toBe(1 / 40);
  });
});
