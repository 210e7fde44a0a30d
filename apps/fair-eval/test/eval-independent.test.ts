// docs/evaluation.md §2.3 and §2.7.5: N independent trackers under round-robin spraying react about N
// times slower and throttle noisy flows less; sticky routing brings them back to (a).
import { describe, expect, test } from "vitest";
import { run } from "./eval-helpers.js";

describe("(b) independent trackers degrade with N", { timeout: 120_000 }, () => {
  test("api_noisy_neighbors, N = 1…16: TTT50 and failures before it grow, entitlement Jain falls", () => {
    const results = [1, 2, 4, 8, 16].map((n) => run("api_noisy_neighbors", "independent", n));
    const ttt = results.map((r) => r.ttt50Ms as number);
    const failures = results.map((r) => r.failuresBeforeTtt as number);
    const jain = results.map((r) => r.entitlementJain);
    for (let i = 1; i < results.length; i++) {
      expect(ttt[i]).toBeGreaterThan(ttt[i - 1] as number);
      expect(failures[i]).toBeGreaterThan(failures[i - 1] as number);
      expect(jain[i]).toBeLessThan(jain[i - 1] as number);
    }
    // Roughly linear in N: 16 instances take several times longer than one.
    expect(ttt[4]).toBeGreaterThan(4 * (ttt[0] as number));
    expect(failures[4]).toBeGreaterThan(4 * (failures[0] as number));
    const central = run("api_noisy_neighbors", "centralized", 16);
    expect(central.entitlementJain - (jain[4] as number)).toBeGreaterThan(0.2);
  });

  test("affinity routing (a sticky load balancer) brings (b) back within 0.02 of (a) at N = 8", () => {
    const sticky = run("api_noisy_neighbors", "independent", 8, { routing: "affinity" });
    const central = run("api_noisy_neighbors", "centralized", 8, { routing: "affinity" });
    expect(Math.abs(sticky.entitlementJain - central.entitlementJain)).toBeLessThanOrEqual(0.02);
  });
});
