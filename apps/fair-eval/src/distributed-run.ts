// One run of the distributed evaluation (docs/evaluation.md §2): the §1 workload served by N instances
// in front of the one shared token bucket, with FAIR state kept in one of six ways.
import {
  bucketIndexesOf,
  FairnessTracker,
  type FairnessTrackerConfig,
  type FairnessTrackerOptions,
} from "@fair/tracker";
import { EventQueue } from "./event-queue.js";
import type { BadFlowSeries, FaultPlan } from "./faults.js";
import { GoRand } from "./go-rand.js";
import { NaiveClient, type SimDecision } from "./naive-client.js";
import { MetricsRecorder, type RunMetrics } from "./run-metrics.js";
import type { Scenario } from "./scenarios.js";
import { SimStateService } from "./sim-service.js";
import { harnessConfig, stoppedTimers } from "./single-run.js";
import { TokenBucket } from "./token-bucket.js";
import { unixMilli, type Workload } from "./workload.js";

/**
 * Where FAIR state lives: nowhere (`nofair`); one tracker for all (`centralized`, a); one per
 * instance (`independent`, b); per-instance replicas shared through the State Service
 * (`shared`, c); and the two broken protocols of §2.4 (`naive`, `nodecay`).
 */
export type Mode = "nofair" | "centralized" | "independent" | "shared" | "naive" | "nodecay";
export const modes: readonly Mode[] = [
  "nofair",
  "centralized",
  "independent",
  "shared",
  "naive",
  "nodecay",
];

/** How requests reach instances: round-robin spraying, uniformly at random, or sticky by client. */
export type Routing = "rr" | "random" | "affinity";

/** One run's parameters. */
export interface RunSpec {
  readonly scenario: Scenario;
  readonly workload: Workload;
  readonly entitlements: Float64Array;
  readonly mode: Mode;
  readonly instances: number;
  readonly routing: Routing;
  /** One-way delay to and from the State Service, ms (modes with a service). */
  readonly delayMs: number;
  /** Broadcast interval, ms; 0 = per update (modes with a service). */
  readonly batchMs: number;
  /**
   * The store replica's coalescing interval, ms (modes with a service; `SimServiceOptions`):
   * 0 or absent = every update applied to the store on arrival.
   */
  readonly storeFlushMs?: number;
  /** Which RNG streams the instances draw from; the workload stays fixed. */
  readonly trial: number;
  /** λ per second; default 0.01. */
  readonly lambda?: number;
  /** Window (rotation) length, ms; default the scenario's duration + 1 min: no rotation. */
  readonly rotationMs?: number;
  /** A fault of the State Service (modes with a service; docs/evaluation.md §2.9). */
  readonly fault?: FaultPlan;
}

/** What a run measured, plus its sync cost and its decisions (1 = throttled) for comparisons. */
export interface RunResult extends RunMetrics {
  readonly deltasPerSec: number;
  readonly updatesPerSec: number;
  /** Updates, and bucket deltas, the service applied to its store per second (`storeFlushMs`). */
  readonly storeUpdatesPerSec: number;
  readonly storeDeltasPerSec: number;
  readonly decisions: Uint8Array;
  /** The noisy flows' requests and throttles per 100 ms. */
  readonly badSeries: BadFlowSeries;
  /** With a fault: when every link was connected again, ms; otherwise null. */
  readonly recoveryMs: number | null;
}

interface Decider {
  register(id: string): SimDecision;
  report(id: string, outcome: "success" | "failure"): void;
}

const sharedId = "fair-eval";

/** The seed of instance `k`'s decision RNG in trial `trial`: the same in every mode. */
export function instanceSeed(scenario: Scenario, trial: number, k: number): number {
  return (1000 + scenario.index) * 1_000_003 + trial * 7919 + k * 104_729 + 1;
}

/** Runs the workload once under `spec`. */
export function runDistributed(spec: RunSpec): RunResult {
  const { scenario, workload, instances, mode } = spec;
  const config: FairnessTrackerConfig = {
    ...harnessConfig(scenario, workload.clients.length),
    includeStats: true,
    lambda: spec.lambda ?? 0.01,
    rotationFrequencyMs: spec.rotationMs ?? scenario.durationMs + 60_000,
  };
  const queue = new EventQueue();
  const rngs = Array.from(
    { length: instances },
    (_, k) => new GoRand(instanceSeed(scenario, spec.trial, k)),
  );
  let current = rngs[0] as GoRand;
  const base: Partial<FairnessTrackerOptions> = {
    now: () => queue.now,
    random: () => current.float64(),
    timers: stoppedTimers,
  };
  const distributed = (trackerId: string, service?: SimStateService) =>
    wrap(
      new FairnessTracker(config, {
        ...base,
        distributed: { trackerId, ...(service === undefined ? {} : { link: service.connect() }) },
      }),
    );
  let service: SimStateService | undefined;
  let deciders: Decider[] = [];
  if (mode === "centralized") {
    deciders = Array(instances).fill(distributed(sharedId));
  } else if (mode === "independent") {
    deciders = rngs.map((_, k) => distributed(`${sharedId}-${k}`));
  } else if (mode !== "nofair") {
    service = new SimStateService(queue, {
      delayMs: spec.delayMs,
      batchMs: spec.batchMs,
      windowMs: config.rotationFrequencyMs,
      // The broken controls run a server that never decays (§2.4).
      decayRatePerSecond: mode === "shared" ? config.lambda : 0,
      ...(spec.fault === undefined ? {} : { fault: spec.fault }),
      storeFlushMs: spec.storeFlushMs ?? 0,
    });
    const svc = service;
    deciders =
      mode === "naive"
        ? rngs.map(() => {
            const client = new NaiveClient(
              config,
              sharedId,
              svc.connect(),
              () => current.float64(),
              0,
            );
            return {
              register: (id: string) => client.registerRequest(id, queue.now),
              report: (id: string, outcome: "success" | "failure") =>
                client.reportOutcome(id, outcome, queue.now),
            };
          })
        : rngs.map(() => distributed(sharedId, svc));
  }
  const shadow =
    mode === "nofair"
      ? undefined
      : wrap(
          new FairnessTracker(config, {
            ...base,
            random: () => 1,
            distributed: { trackerId: sharedId },
          }),
        );
  const route = router(spec, workload);
  const bucket = new TokenBucket(scenario.capacityPerSecond, scenario.burstTokens);
  const recorder = new MetricsRecorder(scenario, workload);
  const decisions = new Uint8Array(workload.atNs.length);
  for (let i = 0; i < workload.atNs.length; i++) {
    const client = workload.client[i] as number;
    const id = (workload.clients[client] as { id: string }).id;
    const atNs = workload.atNs[i] as number;
    const atMs = unixMilli(atNs);
    queue.runUntil(atMs);
    const k = route(i, client);
    current = rngs[k] as GoRand;
    const decider = deciders[k];
    if (decider !== undefined && shadow !== undefined) {
      const decision = decider.register(id);
      recorder.divergence(decision.finalProbability, shadow.register(id).finalProbability);
      if (decision.shouldThrottle) {
        decisions[i] = 1;
        recorder.request(client, atMs, true, false);
        continue;
      }
    }
    const ok = bucket.take(atNs);
    recorder.request(client, atMs, false, ok);
    decider?.report(id, ok ? "success" : "failure");
    shadow?.report(id, ok ? "success" : "failure");
  }
  const seconds = scenario.durationMs / 1000;
  return {
    ...recorder.finish(spec.entitlements, mode !== "nofair"),
    deltasPerSec: (service?.stats.deltasReceived ?? 0) / seconds,
    updatesPerSec: (service?.stats.bucketUpdatesDelivered ?? 0) / seconds,
    storeUpdatesPerSec: (service?.stats.storeUpdatesApplied ?? 0) / seconds,
    storeDeltasPerSec: (service?.stats.storeDeltasApplied ?? 0) / seconds,
    decisions,
    badSeries: recorder.badSeries(),
    recoveryMs: service?.recoveryMs ?? null,
  };
}

function wrap(tracker: FairnessTracker): Decider {
  return {
    register(id) {
      const result = tracker.registerRequest(id);
      return {
        shouldThrottle: result.shouldThrottle,
        finalProbability: result.stats?.finalProbability ?? Number.NaN,
      };
    },
    report(id, outcome) {
      tracker.reportOutcome(id, outcome);
    },
  };
}

function router(spec: RunSpec, workload: Workload): (event: number, client: number) => number {
  const n = spec.instances;
  if (spec.routing === "rr") return (event) => event % n;
  if (spec.routing === "random") {
    const rng = new GoRand(instanceSeed(spec.scenario, spec.trial, 1 << 20));
    return () => Math.floor(rng.float64() * n);
  }
  // Sticky by client: the client's bucket in one level of n buckets under murmur seed 0, that
  // is murmur3's low 32 bits of h1 modulo n.
  const home = workload.clients.map(
    ({ id }) => bucketIndexesOf(id, { l: 1, m: n }, 0)[0] as number,
  );
  return (_, client) => home[client] as number;
}
