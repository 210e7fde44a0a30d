// docs/evaluation.md §2.7.3 states its bounds at N = 8 over 3 trials (eval-staleness.test.ts); here the
// same bounds hold at every other N at the corner d = 50 ms, B = 250 ms, one trial each.
import { describe, expect, test } from "vitest";
import { bounds } from "../src/acceptance.js";
import { run } from "./eval-helpers.js";

describe("bounded staleness at d = 50 ms, B = 250 ms for every N", { timeout: 120_000 }, () => {
  test.each([1, 2, 4, 16])("api_noisy_neighbors, N = %i", (n) => {
    const central = run("api_noisy_neighbors", "centralized", n);
    const shared = run("api_noisy_neighbors", "shared", n, { delayMs: 50, batchMs: 250 });
    expect(Math.abs(shared.divergence ?? 1)).toBeLessThanOrEqual(bounds.absDivergence);
    expect(Math.abs(shared.entitlementJain - central.entitlementJain)).toBeLessThanOrEqual(
      bounds.jain,
    );
    expect(shared.ttt50Ms as number).toBeLessThanOrEqual(
      bounds.tttRatio * (central.ttt50Ms as number),
    );
    expect(Math.abs(shared.utilization - central.utilization) * 100).toBeLessThanOrEqual(
      bounds.utilizationPp,
    );
  });
});
