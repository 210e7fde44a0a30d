// docs/fair-spec.md §13.8 and docs/evaluation.md §1.6: the TypeScript harness, with Go's math/rand, murmur3 and
// Exp, reproduces the Go harness's counts exactly (property 46).
import { describe, expect, test } from "vitest";
import { maxMinEntitlements, serviceCapacity } from "../src/fairness.js";
import { scenarioNamed, scenarioSeed } from "../src/scenarios.js";
import { runSingle } from "../src/single-run.js";
import { generateWorkload, requestCounts } from "../src/workload.js";

function run(name: string, fair: boolean) {
  const scenario = scenarioNamed(name);
  const seed = scenarioSeed(scenario);
  const workload = generateWorkload(scenario, seed);
  const capacity = serviceCapacity(scenario, workload.atNs.length);
  const entitlements = maxMinEntitlements(requestCounts(workload), capacity);
  const result = runSingle(scenario, workload, entitlements, fair, seed);
  return {
    requests: workload.atNs.length,
    capacity,
    entitlementJain: Number(result.entitlementJain.toFixed(4)),
    rawJain: Number(result.rawJain.toFixed(4)),
    utilization: Number((100 * result.utilization).toFixed(2)),
    successes: result.totalSuccesses,
    failures: result.failures,
    throttled: result.throttled,
  };
}

describe("the Go harness's numbers, count for count", { timeout: 60_000 }, () => {
  test("13.8: api_noisy_neighbors with FAIR — 30091 successes, 4471 failures, 52316 throttled", () => {
    expect(run("api_noisy_neighbors", true)).toEqual({
      requests: 86_878,
      capacity: 30_100,
      entitlementJain: 0.6673,
      rawJain: 0.6139,
      utilization: 99.97,
      successes: 30_091,
      failures: 4_471,
      throttled: 52_316,
    });
  });

  test.each([
    ["api_noisy_neighbors", false, 86_878, 30_100, 0.2184, 0.2039, 99.99, 30_097, 56_781, 0],
    ["flash_crowd", false, 59_965, 36_300, 0.9871, 0.9871, 99.99, 36_298, 23_667, 0],
    ["flash_crowd", true, 59_965, 36_300, 0.9778, 0.9778, 99.96, 36_287, 7_683, 15_995],
    ["batch_surge", false, 90_054, 43_320, 0.7497, 0.4507, 91.64, 39_697, 50_357, 0],
    ["batch_surge", true, 90_054, 43_320, 0.9944, 0.8993, 89.39, 38_725, 1_652, 49_677],
  ])(
    "13.8: %s (FAIR: %s)",
    (name, fair, requests, capacity, ej, raw, util, ok, failed, throttled) => {
      expect(run(name, fair)).toEqual({
        requests,
        capacity,
        entitlementJain: ej,
        rawJain: raw,
        utilization: util,
        successes: ok,
        failures: failed,
        throttled,
      });
    },
  );

  test("1.4: the water-filling entitlements — api aggressive clients get 167.1 each, flash 72.6, batch 720.8", () => {
    const entitled = (name: string) => {
      const scenario = scenarioNamed(name);
      const workload = generateWorkload(scenario, scenarioSeed(scenario));
      return {
        workload,
        entitlements: maxMinEntitlements(
          requestCounts(workload),
          serviceCapacity(scenario, workload.atNs.length),
        ),
      };
    };
    const api = entitled("api_noisy_neighbors");
    const aggressive = api.workload.clients.findIndex((c) => c.className === "aggressive");
    expect(api.entitlements[aggressive]).toBeCloseTo(167.1, 1);
    expect(entitled("flash_crowd").entitlements[0]).toBeCloseTo(72.6, 1);
    const batch = entitled("batch_surge");
    const first = batch.workload.clients.findIndex((c) => c.className === "batch");
    expect(batch.entitlements[first]).toBeCloseTo(720.8, 1);
  });
});
