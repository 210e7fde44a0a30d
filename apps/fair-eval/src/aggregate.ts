// Trials of one configuration, folded into means (and the sd of entitlement Jain).
import type { RunRecord } from "./job.js";

/** The mean over trials of one configuration. */
export interface Summary {
  readonly first: RunRecord;
  readonly trials: number;
  readonly entitlementJain: number;
  readonly entitlementJainSd: number;
  readonly rawJain: number;
  readonly utilization: number;
  readonly ttt50Ms: number | null;
  readonly failuresBeforeTtt: number | null;
  readonly badShare: number | null;
  readonly goodThrottleRate: number;
  readonly postGoodThrottleRate: number | null;
  readonly divergence: number | null;
  readonly absDivergence: number | null;
  readonly deltasPerSec: number;
}

/** The configuration a record belongs to: everything but the trial. */
export function configKey(r: RunRecord): string {
  return [
    r.part,
    r.scenario,
    r.mode,
    r.instances,
    r.routing,
    r.delayMs,
    r.batchMs,
    r.storeFlushMs ?? 0,
    r.lambda,
    r.rotationMs,
  ].join("|");
}

/** Groups records by configuration, in first-seen order, and averages each group. */
export function summarize(records: readonly RunRecord[]): Summary[] {
  const groups = new Map<string, RunRecord[]>();
  for (const record of records) {
    const key = configKey(record);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [record]);
    else group.push(record);
  }
  return [...groups.values()].map((group) => {
    const jains = group.map((r) => r.entitlementJain);
    return {
      first: group[0] as RunRecord,
      trials: group.length,
      entitlementJain: mean(jains) as number,
      entitlementJainSd: sd(jains),
      rawJain: mean(group.map((r) => r.rawJain)) as number,
      utilization: mean(group.map((r) => r.utilization)) as number,
      ttt50Ms: mean(group.map((r) => r.ttt50Ms)),
      failuresBeforeTtt: mean(group.map((r) => r.failuresBeforeTtt)),
      badShare: mean(group.map((r) => r.badShare)),
      goodThrottleRate: mean(group.map((r) => r.goodThrottleRate)) as number,
      postGoodThrottleRate: mean(group.map((r) => r.postGoodThrottleRate)),
      divergence: mean(group.map((r) => r.divergence)),
      absDivergence: mean(group.map((r) => r.absDivergence)),
      deltasPerSec: mean(group.map((r) => r.deltasPerSec)) as number,
    };
  });
}

/** The mean of the non-null values, or null when there are none. */
export function mean(values: readonly (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

/** The sample standard deviation (0 for one value). */
export function sd(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values) as number;
  return Math.sqrt(values.reduce((acc, v) => acc + (v - m) ** 2, 0) / (values.length - 1));
}
