// docs/evaluation.md §2.7.2: with no delay and no batching, N instances sharing state through the State
// Service (the real @fair/state-store) make exactly the decisions of one centralized tracker.
import { describe, expect, test } from "vitest";
import { run } from "./eval-helpers.js";

describe("(c) shared at d = 0, B = 0 decides as (a) centralized", { timeout: 120_000 }, () => {
  test.each([1, 2, 4, 8, 16])(
    "api_noisy_neighbors, N = %i: the same decision for every request",
    (n) => {
      const central = run("api_noisy_neighbors", "centralized", n);
      const shared = run("api_noisy_neighbors", "shared", n);
      expect(shared.decisions).toEqual(central.decisions);
      expect(shared.successes).toBe(central.successes);
      expect(shared.throttled).toBe(central.throttled);
      expect(shared.entitlementJain).toBe(central.entitlementJain);
      expect(Math.abs(shared.divergence ?? 1)).toBeLessThan(1e-12);
      expect(central.divergence).toBe(0);
    },
  );

  test("batch_surge with 60 s windows (six rotations), N = 4: still the same decisions", () => {
    const central = run("batch_surge", "centralized", 4, { rotationMs: 60_000 });
    const shared = run("batch_surge", "shared", 4, { rotationMs: 60_000 });
    expect(shared.decisions).toEqual(central.decisions);
    expect(shared.entitlementJain).toBeGreaterThan(0.99);
  });
});
