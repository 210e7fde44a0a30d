// The harness's fairness metrics (docs/evaluation.md §1.4).
import type { Scenario } from "./scenarios.js";
import { durationSeconds } from "./workload.js";

/** `min(capacity · duration + burst, requests)`: what the resource could serve at most. */
export function serviceCapacity(scenario: Scenario, totalRequests: number): number {
  const capacity =
    scenario.capacityPerSecond * durationSeconds(scenario.durationMs * 1e6) + scenario.burstTokens;
  return Math.min(capacity, totalRequests);
}

/**
 * Max-min fair entitlements by water-filling over total demand: in ascending order of demand,
 * a client whose demand fits the equal share of what is left gets its demand; once one does
 * not, it and everyone after get that share.
 */
export function maxMinEntitlements(demand: Float64Array, capacity: number): Float64Array {
  const entitlements = new Float64Array(demand.length);
  const order = Array.from(demand.keys()).sort(
    (a, b) => (demand[a] as number) - (demand[b] as number),
  );
  let remaining = capacity;
  for (let pos = 0; pos < order.length; pos++) {
    const index = order[pos] as number;
    const share = remaining / (order.length - pos);
    const want = demand[index] as number;
    if (want <= share) {
      entitlements[index] = want;
      remaining -= want;
      continue;
    }
    for (let rest = pos; rest < order.length; rest++) entitlements[order[rest] as number] = share;
    break;
  }
  return entitlements;
}

/** Jain's index `(Σx)² / (n · Σx²)`, 0 when every x is 0. */
export function jain(values: ArrayLike<number>): number {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as number;
    sum += value;
    squares += value * value;
  }
  return squares === 0 ? 0 : (sum * sum) / (values.length * squares);
}

/** Jain over successes / entitlement (clients entitled to something), with the mean and worst ratio. */
export function entitlementJain(
  successes: ArrayLike<number>,
  entitlements: ArrayLike<number>,
): { jain: number; mean: number; worst: number } {
  const ratios: number[] = [];
  let sum = 0;
  let worst = Number.POSITIVE_INFINITY;
  for (let i = 0; i < successes.length; i++) {
    const entitled = entitlements[i] as number;
    if (entitled === 0) continue;
    const ratio = (successes[i] as number) / entitled;
    ratios.push(ratio);
    sum += ratio;
    worst = Math.min(worst, ratio);
  }
  if (ratios.length === 0) return { jain: 0, mean: 0, worst: 0 };
  return { jain: jain(ratios), mean: sum / ratios.length, worst };
}
