// The harness's deterministic workload (docs/evaluation.md §1.2): per client, all of its Poisson arrivals
// from Go's math/rand before the next client's, then every event sorted by (time, client).
import { GoRand } from "./go-rand.js";
import type { Scenario } from "./scenarios.js";

/** One client: its id as the Go harness spells it, and its class. */
export interface Client {
  readonly id: string;
  readonly className: string;
  readonly bad: boolean;
  /** When its class starts sending, ms. */
  readonly classStartMs: number;
}

/** A scenario's clients and its arrivals, sorted by (time, client index). */
export interface Workload {
  readonly clients: readonly Client[];
  /** Arrival times in integer nanoseconds (Go's `time.Duration`). */
  readonly atNs: Float64Array;
  /** The client index of each arrival. */
  readonly client: Int32Array;
}

const nsPerSecond = 1e9;
const nsPerMs = 1e6;

/** Generates the workload of `scenario` from `rand.New(rand.NewSource(seed))`. */
export function generateWorkload(scenario: Scenario, seed: number): Workload {
  const rng = new GoRand(seed);
  const clients: Client[] = [];
  const times: number[] = [];
  const owners: number[] = [];
  for (const workloadClass of scenario.classes) {
    const startNs = (workloadClass.startMs ?? 0) * nsPerMs;
    const endNs = (workloadClass.endMs ?? scenario.durationMs) * nsPerMs;
    const rate = workloadClass.ratePerSecond;
    for (let i = 0; i < workloadClass.clients; i++) {
      const index = clients.length;
      clients.push({
        id: `${workloadClass.name}-${String(i).padStart(3, "0")}`,
        className: workloadClass.name,
        bad: workloadClass.bad,
        classStartMs: workloadClass.startMs ?? 0,
      });
      for (
        let at = startNs + nextArrivalNs(rng, rate);
        at < endNs;
        at += nextArrivalNs(rng, rate)
      ) {
        times.push(at);
        owners.push(index);
      }
    }
  }
  const order = Array.from(times.keys()).sort(
    (a, b) =>
      (times[a] as number) - (times[b] as number) || (owners[a] as number) - (owners[b] as number),
  );
  return {
    clients,
    atNs: Float64Array.from(order, (i) => times[i] as number),
    client: Int32Array.from(order, (i) => owners[i] as number),
  };
}

/** Go's `time.Duration(seconds * 1e9)` of an exponential gap: truncated to whole ns. */
function nextArrivalNs(rng: GoRand, ratePerSecond: number): number {
  if (ratePerSecond <= 0) return 3600 * nsPerSecond;
  const seconds = -Math.log(1 - rng.float64()) / ratePerSecond;
  return Math.trunc(seconds * nsPerSecond);
}

/** Go's `Duration.Seconds()`: whole seconds plus the remaining ns / 1e9, summed as float64. */
export function durationSeconds(ns: number): number {
  const seconds = Math.floor(ns / nsPerSecond);
  return seconds + (ns - seconds * nsPerSecond) / nsPerSecond;
}

/** `floor(ns / 1 ms)`: what Go's `UnixMilli()` gives for a clock at `ns` past the epoch. */
export function unixMilli(ns: number): number {
  return Math.floor(ns / nsPerMs);
}

/** Requests per client: the demand the fair entitlement is computed from. */
export function requestCounts(workload: Workload): Float64Array {
  const counts = new Float64Array(workload.clients.length);
  for (const index of workload.client) counts[index] = (counts[index] as number) + 1;
  return counts;
}
