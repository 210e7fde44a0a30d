// The per-run metrics of docs/evaluation.md §2.2, gathered request by request.
import { entitlementJain, jain, serviceCapacity } from "./fairness.js";
import { type BadFlowSeries, binMs } from "./faults.js";
import type { Scenario } from "./scenarios.js";
import type { Workload } from "./workload.js";

/** What a distributed run measured. Times are ms; rates are fractions. */
export interface RunMetrics {
  readonly entitlementJain: number;
  readonly rawJain: number;
  readonly utilization: number;
  readonly successes: number;
  readonly failures: number;
  readonly throttled: number;
  /** Σ successes / Σ entitlement over the good classes (steady, interactive, shopper). */
  readonly goodShare: number;
  /** The same over the noisy classes (aggressive, batch); null when there are none. */
  readonly badShare: number | null;
  /** Throttled / requests over the good classes: the false-positive proxy. */
  readonly goodThrottleRate: number;
  /** The same from the scenario's post-contention time on; null when it has none. */
  readonly postGoodThrottleRate: number | null;
  /** Median over noisy flows of the time from their class start until ≥ 10 of their last 20 requests were throttled. */
  readonly ttt50Ms: number | null;
  /** Noisy flows that never got there. */
  readonly tttNever: number;
  /** Median over noisy flows of the resource failures they caused before that time. */
  readonly failuresBeforeTtt: number | null;
  /** Mean over decisions of pFinal used − pFinal of the centralized shadow; null without FAIR. */
  readonly divergence: number | null;
  /** Mean of |pFinal used − pFinal of the shadow|. */
  readonly absDivergence: number | null;
}

const window = 20;
const threshold = 10;

/** Accumulates one run's events. */
export class MetricsRecorder {
  readonly #scenario: Scenario;
  readonly #workload: Workload;
  readonly #successes: Float64Array;
  readonly #requests: Float64Array;
  readonly #throttledBy: Float64Array;
  readonly #postRequests: Float64Array;
  readonly #postThrottled: Float64Array;
  // Per client: the last 20 throttle flags as a ring, how many are set, and where it is.
  readonly #ring: Uint8Array;
  readonly #ringCount: Uint8Array;
  readonly #ringPos: Uint8Array;
  readonly #tttMs: Float64Array;
  readonly #failuresBefore: Float64Array;
  // The noisy flows' requests and throttles per 100 ms, for the fault scenarios.
  readonly #badRequests: Uint32Array;
  readonly #badThrottled: Uint32Array;
  #failures = 0;
  #throttled = 0;
  #total = 0;
  #divergence = 0;
  #absDivergence = 0;
  #decisions = 0;

  constructor(scenario: Scenario, workload: Workload) {
    const n = workload.clients.length;
    this.#scenario = scenario;
    this.#workload = workload;
    this.#successes = new Float64Array(n);
    this.#requests = new Float64Array(n);
    this.#throttledBy = new Float64Array(n);
    this.#postRequests = new Float64Array(n);
    this.#postThrottled = new Float64Array(n);
    this.#ring = new Uint8Array(n * window);
    this.#ringCount = new Uint8Array(n);
    this.#ringPos = new Uint8Array(n);
    this.#tttMs = new Float64Array(n).fill(Number.NaN);
    this.#failuresBefore = new Float64Array(n);
    const bins = Math.ceil(scenario.durationMs / binMs);
    this.#badRequests = new Uint32Array(bins);
    this.#badThrottled = new Uint32Array(bins);
  }

  /** A decision's pFinal against the shadow's. */
  divergence(used: number, ideal: number): void {
    this.#divergence += used - ideal;
    this.#absDivergence += Math.abs(used - ideal);
    this.#decisions++;
  }

  /** A request at `atMs`: throttled, or it tried the resource and `succeeded` or not. */
  request(client: number, atMs: number, throttled: boolean, succeeded: boolean): void {
    this.#requests[client] = (this.#requests[client] as number) + 1;
    const post = this.#scenario.postPeriodFromMs;
    const isPost = post !== undefined && atMs >= post;
    if (isPost) this.#postRequests[client] = (this.#postRequests[client] as number) + 1;
    if (throttled) {
      this.#throttled++;
      this.#throttledBy[client] = (this.#throttledBy[client] as number) + 1;
      if (isPost) this.#postThrottled[client] = (this.#postThrottled[client] as number) + 1;
    } else if (succeeded) {
      this.#successes[client] = (this.#successes[client] as number) + 1;
      this.#total++;
    } else {
      this.#failures++;
      if (Number.isNaN(this.#tttMs[client] as number)) {
        this.#failuresBefore[client] = (this.#failuresBefore[client] as number) + 1;
      }
    }
    const info = this.#workload.clients[client];
    if (info?.bad === true) {
      const bin = Math.min(Math.floor(atMs / binMs), this.#badRequests.length - 1);
      this.#badRequests[bin] = (this.#badRequests[bin] as number) + 1;
      if (throttled) this.#badThrottled[bin] = (this.#badThrottled[bin] as number) + 1;
    }
    if (info?.bad === true && Number.isNaN(this.#tttMs[client] as number)) {
      this.#track(client, atMs - info.classStartMs, throttled);
    }
  }

  #track(client: number, sinceStartMs: number, throttled: boolean): void {
    const slot = client * window + (this.#ringPos[client] as number);
    const count =
      (this.#ringCount[client] as number) - (this.#ring[slot] as number) + (throttled ? 1 : 0);
    this.#ring[slot] = throttled ? 1 : 0;
    this.#ringPos[client] = ((this.#ringPos[client] as number) + 1) % window;
    this.#ringCount[client] = count;
    if (count >= threshold) this.#tttMs[client] = sinceStartMs;
  }

  /** The noisy flows' requests and throttles per 100 ms of simulated time. */
  badSeries(): BadFlowSeries {
    return { requests: [...this.#badRequests], throttled: [...this.#badThrottled] };
  }

  /** The run's metrics against the scenario's entitlements. */
  finish(entitlements: Float64Array, withFair: boolean): RunMetrics {
    const clients = this.#workload.clients;
    const share = (bad: boolean) => {
      let got = 0;
      let entitled = 0;
      clients.forEach((c, i) => {
        if (c.bad !== bad) return;
        got += this.#successes[i] as number;
        entitled += entitlements[i] as number;
      });
      return entitled === 0 ? null : got / entitled;
    };
    const rate = (requests: Float64Array, throttled: Float64Array) => {
      let r = 0;
      let t = 0;
      clients.forEach((c, i) => {
        if (c.bad) return;
        r += requests[i] as number;
        t += throttled[i] as number;
      });
      return r === 0 ? 0 : t / r;
    };
    const badIndexes = clients.flatMap((c, i) => (c.bad ? [i] : []));
    const reached = badIndexes.filter((i) => !Number.isNaN(this.#tttMs[i] as number));
    const ratios = entitlementJain(this.#successes, entitlements);
    const n = this.#decisions;
    return {
      entitlementJain: ratios.jain,
      rawJain: jain(this.#successes),
      utilization: this.#total / serviceCapacity(this.#scenario, this.#workload.atNs.length),
      successes: this.#total,
      failures: this.#failures,
      throttled: this.#throttled,
      goodShare: share(false) ?? 0,
      badShare: share(true),
      goodThrottleRate: rate(this.#requests, this.#throttledBy),
      postGoodThrottleRate:
        this.#scenario.postPeriodFromMs === undefined
          ? null
          : rate(this.#postRequests, this.#postThrottled),
      ttt50Ms: withFair ? median(reached.map((i) => this.#tttMs[i] as number)) : null,
      tttNever: withFair ? badIndexes.length - reached.length : badIndexes.length,
      failuresBeforeTtt: withFair
        ? median(reached.map((i) => this.#failuresBefore[i] as number))
        : null,
      divergence: withFair && n > 0 ? this.#divergence / n : null,
      absDivergence: withFair && n > 0 ? this.#absDivergence / n : null,
    };
  }
}

/** The median, or null for no values. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
