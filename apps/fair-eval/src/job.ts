// One evaluation run as plain data, so it can cross to a worker thread and back.
import { type RunSpec, runDistributed } from "./distributed-run.js";
import { maxMinEntitlements, serviceCapacity } from "./fairness.js";
import { type BadFlowSeries, type FaultKind, type FaultVariant, faultPlan } from "./faults.js";
import type { RunMetrics } from "./run-metrics.js";
import { scenarioNamed, scenarioSeed } from "./scenarios.js";
import { defaultVariant, runSingle } from "./single-run.js";
import { generateWorkload, requestCounts } from "./workload.js";

/**
 * What to run. `single` is the Go harness (§1): `centralized` there is Go's one local tracker.
 * `faults` (§2.9) are shared runs with a fault, and the centralized runs they are judged against.
 */
export interface Job
  extends Pick<RunSpec, "mode" | "instances" | "routing" | "delayMs" | "batchMs" | "trial"> {
  readonly part: "single" | "distributed" | "faults";
  /** The scenario's name (`scenarioNamed`). */
  readonly scenario: string;
  readonly lambda: number;
  /** `null`: the scenario's duration + 1 min, so no rotation. */
  readonly rotationMs: number | null;
  /** Part `faults`, mode `shared`: which fault, in which variant. */
  readonly fault?: FaultKind;
  readonly variant?: FaultVariant;
  /** Mode `shared`: the store replica's coalescing interval, ms (`RunSpec`); absent = 0. */
  readonly storeFlushMs?: number;
}

/** A finished run: the job and what it measured (the JSON line of `--json`). */
export interface RunRecord extends Job, RunMetrics {
  readonly deltasPerSec: number;
  readonly updatesPerSec: number;
  /** Updates, and bucket deltas, applied to the store per second. */
  readonly storeUpdatesPerSec: number;
  readonly storeDeltasPerSec: number;
  readonly meanRatio: number | null;
  readonly worstRatio: number | null;
  readonly elapsedMs: number;
  /** Part `faults`: the noisy flows' requests and throttles per 100 ms (not in JSON lines). */
  readonly badSeries?: BadFlowSeries;
  /** Part `faults` with a fault: when every link was connected again, ms. */
  readonly recoveryMs?: number | null;
}

type Prepared = Pick<RunSpec, "scenario" | "workload" | "entitlements">;

/** Workloads are fixed per scenario: generate each once per thread. */
export class WorkloadCache {
  readonly #prepared = new Map<string, Prepared>();

  get(name: string): Prepared {
    let prepared = this.#prepared.get(name);
    if (prepared === undefined) {
      const scenario = scenarioNamed(name);
      const workload = generateWorkload(scenario, scenarioSeed(scenario));
      const capacity = serviceCapacity(scenario, workload.atNs.length);
      prepared = {
        scenario,
        workload,
        entitlements: maxMinEntitlements(requestCounts(workload), capacity),
      };
      this.#prepared.set(name, prepared);
    }
    return prepared;
  }
}

/** Runs `job` and returns its record. */
export function executeJob(job: Job, cache: WorkloadCache): RunRecord {
  const started = performance.now();
  const { scenario, workload, entitlements } = cache.get(job.scenario);
  if (job.part === "single") {
    const fair = job.mode !== "nofair";
    const result = runSingle(scenario, workload, entitlements, fair, scenarioSeed(scenario), {
      ...defaultVariant,
      lambda: job.lambda,
    });
    return {
      ...job,
      entitlementJain: result.entitlementJain,
      rawJain: result.rawJain,
      utilization: result.utilization,
      successes: result.totalSuccesses,
      failures: result.failures,
      throttled: result.throttled,
      goodShare: Number.NaN,
      badShare: null,
      goodThrottleRate: Number.NaN,
      postGoodThrottleRate: null,
      ttt50Ms: null,
      tttNever: 0,
      failuresBeforeTtt: null,
      divergence: null,
      absDivergence: null,
      deltasPerSec: 0,
      updatesPerSec: 0,
      storeUpdatesPerSec: 0,
      storeDeltasPerSec: 0,
      meanRatio: result.meanRatio,
      worstRatio: result.worstRatio,
      elapsedMs: performance.now() - started,
    };
  }
  const fault = job.fault === undefined ? undefined : faultPlan(job.fault, job.variant ?? "after");
  const {
    decisions: _decisions,
    badSeries,
    recoveryMs,
    ...metrics
  } = runDistributed({
    scenario,
    workload,
    entitlements,
    mode: job.mode,
    instances: job.instances,
    routing: job.routing,
    delayMs: job.delayMs,
    batchMs: job.batchMs,
    trial: job.trial,
    lambda: job.lambda,
    ...(job.rotationMs === null ? {} : { rotationMs: job.rotationMs }),
    ...(fault === undefined ? {} : { fault }),
    ...(job.storeFlushMs === undefined ? {} : { storeFlushMs: job.storeFlushMs }),
  });
  return {
    ...job,
    ...metrics,
    ...(job.part === "faults" ? { badSeries, recoveryMs } : {}),
    meanRatio: null,
    worstRatio: null,
    elapsedMs: performance.now() - started,
  };
}
