// One run of the Go harness (docs/evaluation.md §1.3): every request of the workload against the token
// bucket, with or without a local-mode FAIR tracker, RNG and clock wired as Go's are.
import {
  FairnessTracker,
  type FairnessTrackerConfig,
  type FinalProbabilityFunction,
  generateTunedStructureConfig,
  minFinalProbability,
  type Timers,
} from "@fair/tracker";
import { entitlementJain, jain, serviceCapacity } from "./fairness.js";
import { GoRand } from "./go-rand.js";
import type { Scenario } from "./scenarios.js";
import { TokenBucket } from "./token-bucket.js";
import { unixMilli, type Workload } from "./workload.js";

/** A FAIR configuration of the harness's sweep; the default run is 1000 buckets, 25, λ 0.01, min. */
export interface FairVariant {
  readonly bucketsPerLevel: number;
  readonly tolerableBadRequests: number;
  readonly lambda: number;
  readonly finalProbabilityFunction: FinalProbabilityFunction;
}

export const defaultVariant: FairVariant = {
  bucketsPerLevel: 1000,
  tolerableBadRequests: 25,
  lambda: 0.01,
  finalProbabilityFunction: minFinalProbability,
};

/** What one run measured. */
export interface SingleResult {
  readonly fair: boolean;
  readonly successes: Float64Array;
  readonly totalSuccesses: number;
  readonly failures: number;
  readonly throttled: number;
  readonly rawJain: number;
  readonly entitlementJain: number;
  readonly meanRatio: number;
  readonly worstRatio: number;
  readonly utilization: number;
}

/** Timers that never fire: the Go harness hands the tracker a ticker that never ticks, so nothing rotates during a run. */
export const stoppedTimers: Timers = {
  setTimeout: () => 0,
  clearTimeout: () => {},
  setInterval: () => 0,
  clearInterval: () => {},
};

/** The harness's FAIR config for a scenario with `clients` clients. */
export function harnessConfig(
  scenario: Scenario,
  clients: number,
  variant: FairVariant = defaultVariant,
): FairnessTrackerConfig {
  return {
    ...generateTunedStructureConfig(clients, variant.bucketsPerLevel, variant.tolerableBadRequests),
    lambda: variant.lambda,
    finalProbabilityFunction: variant.finalProbabilityFunction,
    rotationFrequencyMs: scenario.durationMs + 60_000,
  };
}

/** Runs the workload once, with FAIR (`fair`) or without, seeded as the Go harness seeds it. */
export function runSingle(
  scenario: Scenario,
  workload: Workload,
  entitlements: Float64Array,
  fair: boolean,
  seed: number,
  variant: FairVariant = defaultVariant,
): SingleResult {
  const { clients, atNs, client } = workload;
  const successes = new Float64Array(clients.length);
  const bucket = new TokenBucket(scenario.capacityPerSecond, scenario.burstTokens);
  let clockMs = 0;
  let tracker: FairnessTracker | undefined;
  if (fair) {
    // Go seeds the package-global RNG, which then gives both structure seeds and every draw.
    const rng = new GoRand(seed);
    tracker = new FairnessTracker(harnessConfig(scenario, clients.length, variant), {
      now: () => clockMs,
      random: () => rng.float64(),
      murmurSeed: () => rng.uint32(),
      timers: stoppedTimers,
    });
  }
  let throttled = 0;
  let failures = 0;
  let total = 0;
  for (let i = 0; i < atNs.length; i++) {
    const index = client[i] as number;
    const id = (clients[index] as { id: string }).id;
    const at = atNs[i] as number;
    if (tracker !== undefined) {
      clockMs = unixMilli(at);
      if (tracker.registerRequest(id).shouldThrottle) {
        throttled++;
        continue;
      }
    }
    if (bucket.take(at)) {
      successes[index] = (successes[index] as number) + 1;
      total++;
      tracker?.reportOutcome(id, "success");
    } else {
      failures++;
      tracker?.reportOutcome(id, "failure");
    }
  }
  tracker?.close();
  const ratios = entitlementJain(successes, entitlements);
  return {
    fair,
    successes,
    totalSuccesses: total,
    failures,
    throttled,
    rawJain: jain(successes),
    entitlementJain: ratios.jain,
    meanRatio: ratios.mean,
    worstRatio: ratios.worst,
    utilization: total / serviceCapacity(scenario, atNs.length),
  };
}
