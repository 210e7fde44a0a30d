import { type Mode, type Routing, type RunResult, runDistributed } from "../src/distributed-run.js";
import { WorkloadCache } from "../src/job.js";

const cache = new WorkloadCache();

/** One distributed run of `scenario` with round-robin routing unless told otherwise. */
export function run(
  scenario: string,
  mode: Mode,
  instances: number,
  {
    delayMs = 0,
    batchMs = 0,
    trial = 0,
    routing = "rr" as Routing,
    rotationMs,
    storeFlushMs,
  }: {
    delayMs?: number;
    batchMs?: number;
    trial?: number;
    routing?: Routing;
    rotationMs?: number;
    storeFlushMs?: number;
  } = {},
): RunResult {
  const { scenario: sc, workload, entitlements } = cache.get(scenario);
  return runDistributed({
    scenario: sc,
    workload,
    entitlements,
    mode,
    instances,
    routing,
    delayMs,
    batchMs,
    trial,
    ...(rotationMs === undefined ? {} : { rotationMs }),
    ...(storeFlushMs === undefined ? {} : { storeFlushMs }),
  });
}
