// docs/evaluation.md §2.9: State Service faults on the simulated clock (api_noisy_neighbors, N = 4,
// round-robin, d = 50 ms, B = 250 ms, the fault at 165 s), judged against the centralized tracker
// (a) of the same trial over the same seconds. The bounds are the recorded figures (the README's
// fault table, 3 trials) with margin; each says what it was measured at.
import { describe, expect, test } from "vitest";
import {
  type FaultKind,
  type FaultRow,
  type FaultVariant,
  faultJobs,
  faultRows,
} from "../src/faults.js";
import { executeJob, WorkloadCache } from "../src/job.js";

const trials = 3;

describe("fault scenarios, 3 trials", { timeout: 120_000 }, () => {
  // 27 runs of ~0.3–0.7 s each: every fault in both variants, and (a), per trial.
  let rows: FaultRow[] | undefined;
  const of = (fault: FaultKind, variant: FaultVariant): FaultRow[] => {
    if (rows === undefined) {
      const cache = new WorkloadCache();
      rows = faultRows(faultJobs(trials, 0.01).map((job) => executeJob(job, cache)));
    }
    const found = rows.filter((r) => r.fault === fault && r.variant === variant);
    expect(found).toHaveLength(trials);
    return found;
  };
  const ratio = (r: FaultRow) => r.badThrottleRate / r.centralizedBadThrottleRate;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const back = (r: FaultRow) => r.backWithinMs ?? Number.POSITIVE_INFINITY;

  test("store data loss, after: within 2 pp of (a) at once, and as throttled", () => {
    for (const r of of("data-loss", "after")) {
      // Measured 0–100 ms and 1.00× (± 0.003): the offers give the new store the fleet's view.
      expect(back(r)).toBeLessThanOrEqual(1_000);
      expect(ratio(r)).toBeGreaterThanOrEqual(0.95);
    }
  });

  test.each(["restart", "restart-snapshot"] as const)(
    "%s, after: throttled at least as much as (a), back within 2 pp of it within 10 s",
    (fault) => {
      const found = of(fault, "after");
      for (const r of found) {
        // Measured 1.04–1.05×: never under-throttled. The offers go net of the adjustments
        // the instances held, which follow as deltas, so each outcome counts once; the rate
        // sits above (a)'s because for 15 s the instances throttled as independent ones do,
        // and the store counts the failures that let through.
        expect(ratio(r)).toBeGreaterThanOrEqual(1);
        // Measured 0, 4.6 and 5.4 s.
        expect(back(r)).toBeLessThanOrEqual(10_000);
      }
      // Measured 3.3 s.
      expect(mean(found.map(back))).toBeLessThanOrEqual(6_000);
    },
  );

  test("outage (same store), after: over-throttles for longer, never under", () => {
    for (const r of of("outage", "after")) {
      // Measured 1.14–1.17×: every adjustment of the 30 s is delivered, and while cut off the
      // instances throttled as independent ones do, so more failures happened than under (a).
      expect(ratio(r)).toBeGreaterThanOrEqual(1);
      // Measured 12.7–14.6 s: the 10 s does not hold here (README, "Fault scenarios").
      expect(back(r)).toBeLessThanOrEqual(20_000);
    }
  });

  test.each(["restart", "data-loss"] as const)(
    "%s, before (negative control): bad flows get through after recovery",
    (fault) => {
      const before = of(fault, "before");
      const after = of(fault, "after");
      before.forEach((r, i) => {
        // Measured 0.68–0.72×: the new store's values, made of the few adjustments since
        // the fault, overwrite the instances' buckets as they are touched.
        expect(ratio(r)).toBeLessThanOrEqual(0.8);
        // Measured 25–31 points below `after`.
        expect((after[i] as FaultRow).badThrottleRate - r.badThrottleRate).toBeGreaterThanOrEqual(
          0.15,
        );
        // Measured 9.7–11.9 s: FAIR learns the aggressive clients afresh.
        expect(back(r)).toBeGreaterThanOrEqual(8_000);
      });
    },
  );
});
