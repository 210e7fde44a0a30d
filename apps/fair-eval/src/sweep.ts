// --sweep: the Go harness's api_noisy_neighbors config sweep (docs/evaluation.md §1.4): 2 final functions
// × 10 tolerances × 6 λ × 9 bucket counts, ranked by entitlement Jain (ties: utilization).
import { meanFinalProbability, minFinalProbability } from "@fair/tracker";
import { WorkloadCache } from "./job.js";
import { scenarioSeed } from "./scenarios.js";
import { type FairVariant, runSingle } from "./single-run.js";

/** Runs the 1080 variants (minutes) and prints the top ten as the Go harness does. */
export function runSweep(quiet: boolean): void {
  const { scenario, workload, entitlements } = new WorkloadCache().get("api_noisy_neighbors");
  const seed = scenarioSeed(scenario);
  const baseline = runSingle(scenario, workload, entitlements, false, seed);
  const results: { name: string; variant: FairVariant; jain: number; utilization: number }[] = [];
  const functions = [
    ["min", minFinalProbability],
    ["mean", meanFinalProbability],
  ] as const;
  for (const [fname, finalProbabilityFunction] of functions) {
    for (const tolerableBadRequests of [20, 25, 30, 35, 40, 45, 50, 60, 75, 100]) {
      for (const lambda of [0, 0.0001, 0.0005, 0.001, 0.005, 0.01]) {
        for (const bucketsPerLevel of [100, 200, 300, 500, 750, 1000, 1500, 2000, 3000]) {
          const variant = {
            bucketsPerLevel,
            tolerableBadRequests,
            lambda,
            finalProbabilityFunction,
          };
          const r = runSingle(scenario, workload, entitlements, true, seed, variant);
          const name = `${fname},tol=${tolerableBadRequests},lambda=${lambda},buckets=${bucketsPerLevel}`;
          results.push({ name, variant, jain: r.entitlementJain, utilization: r.utilization });
          if (!quiet)
            process.stderr.write(
              `sweep [${results.length}/1080] ${name}: ${r.entitlementJain.toFixed(4)}\n`,
            );
        }
      }
    }
  }
  results.sort((a, b) => b.jain - a.jain || b.utilization - a.utilization);
  console.log("## api_noisy_neighbors FAIR config sweep, ranked by entitlement Jain\n");
  console.log(`baseline entitlement Jain ${baseline.entitlementJain.toFixed(4)}\n`);
  console.log("| rank | config | entitlement Jain | improvement | utilization |");
  console.log("| ---- | ------ | ---------------- | ----------- | ----------- |");
  results.slice(0, 10).forEach((r, i) => {
    const improvement = (100 * (r.jain - baseline.entitlementJain)) / baseline.entitlementJain;
    console.log(
      `| ${i + 1} | ${r.name} | ${r.jain.toFixed(4)} | ${improvement >= 0 ? "+" : ""}${improvement.toFixed(1)}% | ${(100 * r.utilization).toFixed(2)}% |`,
    );
  });
}
