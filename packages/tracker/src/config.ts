import { FairnessTrackerError } from "./errors.js";

/**
 * Combines the probabilities of a client's buckets, one per level, into the probability of
 * throttling its request (Go's `FinalProbabilityFunction`). It receives a fresh array for every
 * request, the same array that `stats.bucketProbabilities` later shows, so a function that
 * changes it changes what the stats show (as in Go).
 */
export type FinalProbabilityFunction = (probabilities: number[]) => number;

/**
 * FAIR's parameters (Go's `config.FairnessTrackerConfig`). Build one with
 * {@link generateTunedStructureConfig} or {@link defaultFairnessTrackerConfig} and adjust fields
 * with a spread; a tracker copies and freezes it, so changing the object afterwards changes
 * nothing.
 *
 * Naming trap kept from Go: `m` is the number of buckets **per level** (columns) and `l` the
 * number of levels; in {@link calculateL} the letter M means something else.
 */
export interface FairnessTrackerConfig {
  /** Buckets per level (Go `M`), an integer ≥ 1. Default 1000. */
  readonly m: number;
  /** Levels (Go `L`): buckets per client, one per level. An integer ≥ 1. Default 3. */
  readonly l: number;
  /** Added to each of a client's buckets per reported failure (Go `Pi`); 0 < pd < pi < 1. Default 0.04. */
  readonly pi: number;
  /** Subtracted from each of a client's buckets per reported success (Go `Pd`). Default 4e-5. */
  readonly pd: number;
  /** Exponential decay rate of bucket probabilities, per second (Go `Lambda`), ≥ 0. Default 0.01. */
  readonly lambda: number;
  /**
   * How often the hash seed rotates, in milliseconds (Go `RotationFrequency`). In distributed
   * mode it is the window length: every instance and the State Service must agree on it.
   * Default 300 000 (5 min).
   */
  readonly rotationFrequencyMs: number;
  /** Whether `registerRequest` returns {@link ResultStats} (Go `IncludeStats`). Default false. */
  readonly includeStats: boolean;
  /** How bucket probabilities combine (Go `FinalProbabilityFunction`). Default {@link minFinalProbability}. */
  readonly finalProbabilityFunction: FinalProbabilityFunction;
}

// setTimeout/setInterval treat longer delays as 1 ms, which would rotate continuously.
const maxTimerMs = 2 ** 31 - 1;
// Typed arrays hold every bucket; past this their allocation fails or the heap does.
const maxBuckets = 2 ** 31 - 1;

/**
 * Checks a config as Go's `validateStructureConfig` does (same order, same messages), then the
 * port's stricter checks, and returns a frozen copy. Failures throw `FairnessTrackerError`
 * (`invalid_config`) wrapped as Go wraps them: "Failed to create a structure: The input config
 * failed validation: …".
 */
export function freezeConfig(config: FairnessTrackerConfig): FairnessTrackerConfig {
  const problem = findProblem(config);
  if (problem !== undefined) {
    const inner = new FairnessTrackerError("invalid_config", problem);
    const data = new FairnessTrackerError(
      "invalid_config",
      "The input config failed validation",
      inner,
    );
    throw new FairnessTrackerError("invalid_config", "Failed to create a structure", data);
  }
  return Object.freeze({
    m: config.m,
    l: config.l,
    pi: config.pi,
    pd: config.pd,
    lambda: config.lambda,
    rotationFrequencyMs: config.rotationFrequencyMs,
    includeStats: config.includeStats,
    finalProbabilityFunction: config.finalProbabilityFunction,
  });
}

function findProblem(config: FairnessTrackerConfig): string | undefined {
  if (config === null || typeof config !== "object") return "FairnessTrackerConfig cannot be nil";
  const { l, m, pi, pd, lambda, rotationFrequencyMs } = config;
  // Go's checks, in Go's order. NaN fails no comparison, so it passes all of them, as in Go.
  if (l <= 0 || m <= 0) {
    return `the values of L and M must be at least 1, found L: ${l} and M: ${m}`;
  }
  if (pd <= 0 || pi <= 0) {
    return `the values of Pi and Pd must >0, found Pi: ${goF(pi)} and Pd: ${goF(pd)}`;
  }
  if (pd > 1 || pi >= 1) {
    return `the values of Pi and Pd must <=1, found Pi: ${goF(pi)} and Pd: ${goF(pd)}`;
  }
  if (pi <= pd) return "the value of Pd is expected to be smaller than Pi";
  // The port's additions (docs/fair-spec.md §11): what Go's types or a crash ruled out.
  if (!isUint32(l) || !isUint32(m)) {
    return `the values of L and M must be integers below 2^32, found L: ${l} and M: ${m}`;
  }
  if (l * m > maxBuckets) return `L × M must be at most ${maxBuckets} buckets, found ${l * m}`;
  if (Number.isNaN(pi) || Number.isNaN(pd) || typeof pi !== "number" || typeof pd !== "number") {
    return `the values of Pi and Pd must be numbers, found Pi: ${goF(pi)} and Pd: ${goF(pd)}`;
  }
  if (typeof lambda !== "number" || !Number.isFinite(lambda) || lambda < 0) {
    return `the value of Lambda must be a finite number >= 0, found Lambda: ${String(lambda)}`;
  }
  if (
    typeof rotationFrequencyMs !== "number" ||
    !(rotationFrequencyMs > 0) ||
    rotationFrequencyMs > maxTimerMs
  ) {
    return `the value of RotationFrequency must be > 0 and <= ${maxTimerMs} ms, found ${String(rotationFrequencyMs)}`;
  }
  if (typeof config.finalProbabilityFunction !== "function") {
    return "the FinalProbabilityFunction must be a function";
  }
  if (typeof config.includeStats !== "boolean") {
    return `the value of IncludeStats must be a boolean, found ${String(config.includeStats)}`;
  }
  return undefined;
}

function isUint32(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value <= 0xffff_ffff;
}

// Go's %f: six decimals.
function goF(value: unknown): string {
  return typeof value === "number" ? value.toFixed(6) : String(value);
}
