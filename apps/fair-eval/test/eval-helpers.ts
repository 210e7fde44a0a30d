import { type Summary, summarize } from "../src/aggregate.js";
import { type Mode, type Routing, type RunResult, runDistributed } from "../src/distributed-run.js";
import { type RunRecord, WorkloadCache } from "../src/job.js";

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

/**
 * The summary of one configuration's trials (8 instances, round-robin), as
 * `pnpm eval` aggregates them: `results[i]` is trial i.
 */
export function summaryOf(
  scenario: string,
  mode: Mode,
  results: readonly RunResult[],
  { delayMs = 0, batchMs = 0, storeFlushMs = 0 } = {},
): Summary {
  const records = results.map(
    ({ decisions: _decisions, ...metrics }, trial): RunRecord => ({
      ...metrics,
      part: "distributed",
      scenario,
      mode,
      instances: 8,
      routing: "rr",
      delayMs,
      batchMs,
      trial,
      lambda: 0.01,
      rotationMs: null,
      ...(storeFlushMs === 0 ? {} : { storeFlushMs }),
      meanRatio: null,
      worstRatio: null,
      elapsedMs: 0,
    }),
  );
  return summarize(records)[0] as Summary;
}
