// The fault scenarios of `pnpm eval -- --part faults` (docs/evaluation.md §2.9): a State Service
// restart with and without a snapshot, a 30 s outage and a store that loses its data, all on the
// simulated clock, each with today's client and server (`after`: learning mode, adjustments kept
// through the outage) and the behaviour before them (`before`, a negative control). What the
// simulation does is in `src/sim-service.ts`; what a run is judged by is here.
import type { Job, RunRecord } from "./job.js";

/** What goes wrong. */
export type FaultKind = "restart" | "restart-snapshot" | "outage" | "data-loss";
export const faultKinds: readonly FaultKind[] = [
  "restart",
  "restart-snapshot",
  "outage",
  "data-loss",
];

/**
 * `after`: learning mode (offers on a new epoch, replies to earlier requests dropped) and
 * adjustments held through an outage of any length. `before`: neither — no epoch, so a restarted
 * store's full-state replies overwrite every instance, and a held adjustment is dropped once it
 * has waited through {@link oldMaxSendAttempts} failed connection attempts.
 */
export type FaultVariant = "before" | "after";
export const faultVariants: readonly FaultVariant[] = ["before", "after"];

/** One fault on the simulated clock. */
export interface FaultPlan {
  readonly kind: FaultKind;
  readonly variant: FaultVariant;
  /** When it happens, ms of simulated time. */
  readonly atMs: number;
  /** How long the server is unreachable; 0 for data loss (the server stays up). */
  readonly downMs: number;
  /** Whether the server comes back with a new store (a new epoch). */
  readonly newStore: boolean;
  /** Whether that store restores the last periodic snapshot. */
  readonly snapshot: boolean;
}

/**
 * When faults happen: 165 s into api_noisy_neighbors' 5 minutes, long after every aggressive
 * client is throttled (TTT50 ≈ 4.6 s), and half a snapshot interval after the snapshot at 150 s —
 * the expected age of the last snapshot.
 */
export const faultAtMs = 165_000;
/** The server's default `snapshotIntervalMs`; snapshots are taken at multiples of it. */
export const snapshotIntervalMs = 30_000;
/** How long a restarting server is down. */
export const restartDownMs = 15_000;
/** How long the outage lasts. */
export const outageDownMs = 30_000;
/** The link's reconnect backoff (`@fair/state-client`): first wait, and the most it grows to. */
export const backoffInitialMs = 100;
export const backoffMaxMs = 10_000;
/**
 * When the server is back, link k (from 0) reconnects `reconnectStepMs · (k + 1)` later: one first
 * backoff, staggered so that the instances do not come back in the same instant. A real link's
 * next attempt comes after a jittered wait of up to 10 s; both variants get the same schedule.
 */
export const reconnectStepMs = 100;
/** The old client's `maxSendAttempts`: a held adjustment went after this many failed attempts. */
export const oldMaxSendAttempts = 5;
/** The fault runs: api_noisy_neighbors on N = 4 instances, round-robin, at (d, B) = (50 ms, 250 ms). */
export const faultScenario = "api_noisy_neighbors";
export const faultInstances = 4;
export const faultDelayMs = 50;
export const faultBatchMs = 250;
/** How long after recovery the throttle rate is compared, ms. */
export const afterRecoveryMs = 10_000;
/** The comparison window for "back within", ms, slid in steps of {@link binMs}. */
export const backWindowMs = 1_000;
/** "Back within": at most this far from the centralized tracker's throttle rate (percentage points / 100). */
export const backWithin = 0.02;
/** The resolution of the bad-flow series a run records, ms. */
export const binMs = 100;

/** What each fault does to the server; the variant does not change it. */
const faultEffects: Record<FaultKind, Pick<FaultPlan, "downMs" | "newStore" | "snapshot">> = {
  restart: { downMs: restartDownMs, newStore: true, snapshot: false },
  "restart-snapshot": { downMs: restartDownMs, newStore: true, snapshot: true },
  outage: { downMs: outageDownMs, newStore: false, snapshot: false },
  "data-loss": { downMs: 0, newStore: true, snapshot: false },
};

/** The plan of `kind` in `variant`. */
export function faultPlan(kind: FaultKind, variant: FaultVariant): FaultPlan {
  return { kind, variant, atMs: faultAtMs, ...faultEffects[kind] };
}

/** How the fault tables name a fault. */
export function faultLabel(kind: FaultKind): string {
  const labels: Record<FaultKind, string> = {
    restart: "restart, no snapshot (15 s down)",
    "restart-snapshot": "restart, snapshot (15 s down)",
    outage: "outage (30 s, same store)",
    "data-loss": "store data loss",
  };
  return labels[kind];
}

/**
 * When a link's failed reconnect attempts come, ms after it lost the server: each wait is the
 * ceiling of the client's full-jitter backoff, `min(backoffMaxMs, backoffInitialMs · 2^k)`, so the
 * first five take 100 + 200 + 400 + 800 + 1600 = 3100 ms. Only attempts before `untilMs` (when the
 * server is back) are listed; those fail.
 */
export function failedAttemptOffsets(untilMs: number): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (let k = 0; ; k++) {
    at += Math.min(backoffMaxMs, backoffInitialMs * 2 ** k);
    if (at >= untilMs) return offsets;
    offsets.push(at);
  }
}

/** The bad flows' (aggressive, batch) requests and throttles per {@link binMs} of simulated time. */
export interface BadFlowSeries {
  readonly requests: readonly number[];
  readonly throttled: readonly number[];
}

/** What a fault run measured against the centralized tracker's run of the same trial. */
export interface FaultOutcome {
  /** When every link had reconnected, ms of simulated time. */
  readonly recoveryMs: number;
  /** The bad flows' throttled / requests in [recovery, recovery + 10 s). */
  readonly badThrottleRate: number;
  /** The same for the centralized tracker (no fault) over the same 10 s. */
  readonly centralizedBadThrottleRate: number;
  /**
   * The first t ≥ 0 (in steps of 100 ms) after recovery at which the bad flows' throttle rate over
   * [recovery + t, recovery + t + 1 s) is within 2 percentage points of the centralized
   * tracker's over the same second; null when it never is before the run ends.
   */
  readonly backWithinMs: number | null;
}

/** Compares a fault run's bad-flow series with the centralized run's from `recoveryMs` on. */
export function faultOutcome(
  fault: BadFlowSeries,
  centralized: BadFlowSeries,
  recoveryMs: number,
): FaultOutcome {
  const start = Math.ceil(recoveryMs / binMs);
  const rate = (series: BadFlowSeries, from: number, bins: number) => {
    let requests = 0;
    let throttled = 0;
    for (let i = from; i < from + bins && i < series.requests.length; i++) {
      requests += series.requests[i] as number;
      throttled += series.throttled[i] as number;
    }
    return requests === 0 ? Number.NaN : throttled / requests;
  };
  const tenSeconds = afterRecoveryMs / binMs;
  const window = backWindowMs / binMs;
  let backWithinMs: number | null = null;
  for (let i = start; i + window <= fault.requests.length; i++) {
    const gap = Math.abs(rate(fault, i, window) - rate(centralized, i, window));
    if (gap <= backWithin) {
      backWithinMs = (i - start) * binMs;
      break;
    }
  }
  return {
    recoveryMs,
    badThrottleRate: rate(fault, start, tenSeconds),
    centralizedBadThrottleRate: rate(centralized, start, tenSeconds),
    backWithinMs,
  };
}

/** One fault run judged against the centralized run of its trial: a row of `--json`. */
export interface FaultRow extends FaultOutcome {
  readonly part: "faults";
  readonly scenario: string;
  readonly fault: FaultKind;
  readonly variant: FaultVariant;
  readonly instances: number;
  readonly routing: string;
  readonly delayMs: number;
  readonly batchMs: number;
  readonly trial: number;
  readonly lambda: number;
  readonly faultAtMs: number;
  readonly downMs: number;
  /** The run's whole-run figures, for context. */
  readonly entitlementJain: number;
  readonly goodThrottleRate: number;
}

/** The jobs of part `faults`: per trial, the centralized reference, then every fault in both variants. */
export function faultJobs(trials: number, lambda: number): Job[] {
  const jobs: Job[] = [];
  const base = {
    part: "faults",
    scenario: faultScenario,
    instances: faultInstances,
    routing: "rr",
    lambda,
    rotationMs: null,
  } as const;
  for (let trial = 0; trial < trials; trial++) {
    jobs.push({ ...base, mode: "centralized", delayMs: 0, batchMs: 0, trial });
    for (const fault of faultKinds) {
      for (const variant of faultVariants) {
        jobs.push({
          ...base,
          mode: "shared",
          delayMs: faultDelayMs,
          batchMs: faultBatchMs,
          trial,
          fault,
          variant,
        });
      }
    }
  }
  return jobs;
}

/** Every fault record of `records` judged against the centralized record of the same trial. */
export function faultRows(records: readonly RunRecord[]): FaultRow[] {
  const central = new Map<string, RunRecord>();
  const key = (r: RunRecord) => [r.scenario, r.instances, r.routing, r.lambda, r.trial].join("|");
  for (const r of records) {
    if (r.part === "faults" && r.fault === undefined) central.set(key(r), r);
  }
  const rows: FaultRow[] = [];
  for (const r of records) {
    if (r.part !== "faults" || r.fault === undefined) continue;
    const reference = central.get(key(r));
    if (reference?.badSeries === undefined || r.badSeries === undefined) continue;
    const plan = faultPlan(r.fault, r.variant ?? "after");
    const outcome = faultOutcome(r.badSeries, reference.badSeries, r.recoveryMs ?? plan.atMs);
    rows.push({
      part: "faults",
      scenario: r.scenario,
      fault: r.fault,
      variant: plan.variant,
      instances: r.instances,
      routing: r.routing,
      delayMs: r.delayMs,
      batchMs: r.batchMs,
      trial: r.trial,
      lambda: r.lambda,
      faultAtMs: plan.atMs,
      downMs: plan.downMs,
      ...outcome,
      entitlementJain: r.entitlementJain,
      goodThrottleRate: r.goodThrottleRate,
    });
  }
  return rows;
}
