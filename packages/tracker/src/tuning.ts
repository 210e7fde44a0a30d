import type { FairnessTrackerConfig } from "./config.js";
import { FairnessTrackerError } from "./errors.js";
import { minFinalProbability } from "./final-probability.js";

// Go's pkg/config/tuning.go constants (docs/fair-spec.md §2).
const defaultExpectedClientFlows = 1000;
const defaultBucketsPerLevel = 1000;
const defaultTolerableBadRequestsPerBadFlow = 25;
const defaultDecayRate = 0.01;
const percentBadClientFlows = 0.001;
const lowProbability = 0.0001;
// Go's comment says "10x"; the factor is 1000: 1000 successes undo one failure.
const pdSlowingFactor = 0.001;
const minL = 3;
const defaultRotationMs = 5 * 60 * 1000;

/**
 * `x` to the non-negative integer power `n` by square-and-multiply, the way Go's `math.Pow`
 * computes integer powers. `Math.pow` differs from it in the last bits, which moves
 * {@link calculateL}'s ceiling when its raw value sits within ~1e-13 of an integer
 * (docs/fair-spec.md §2.2).
 */
export function goPowInt(x: number, n: number): number {
  let result = 1;
  let square = x;
  for (let i = n; i !== 0; i = Math.floor(i / 2)) {
    if (i % 2 === 1) result *= square;
    square *= square;
  }
  return result;
}

/**
 * The number of levels that makes an innocent client collide with bad ones on every level with
 * probability at most `p` (Go's `CalculateL`; SFB, Feng et al. 2001): with `mBad` bad flows
 * spread over `bucketsPerLevel` buckets, a bucket is hit with probability
 * `term = 1 − (1 − 1/B)^mBad`, and `L = ceil(log p / log term)`.
 *
 * Degenerate inputs give 0, as Go's `uint32()` of ±Inf or NaN does on amd64; values outside
 * uint32 wrap as Go's conversion does.
 *
 * @param bucketsPerLevel - B, buckets per level
 * @param mBad - expected bad flows (Go's parameter `M`, not the config's `M`)
 * @param p - the tolerable probability of a full collision
 * @example
 * ```ts
 * calculateL(1000, 100, 1e-4); // 4
 * ```
 */
export function calculateL(bucketsPerLevel: number, mBad: number, p: number): number {
  const term = 1 - goPowInt(1 - 1 / bucketsPerLevel, mBad);
  const raw = Math.log(p) / Math.log(term);
  return Math.ceil(raw) >>> 0;
}

/**
 * A config tuned for `expectedClientFlows` clients (Go's `GenerateTunedStructureConfig`):
 * it assumes 0.1 % of them are bad, picks the levels by {@link calculateL} (at least 3), sets
 * `pi = 1 / tolerableBadRequestsPerBadFlow` and `pd = 0.001 × pi`, λ = 0.01/s, rotation every
 * 5 minutes, no stats, the min function. Like Go, it does not validate its result:
 * `tolerableBadRequestsPerBadFlow = 1` gives `pi = 1`, which a tracker then refuses.
 *
 * @throws FairnessTrackerError (`invalid_argument`) when `tolerableBadRequestsPerBadFlow` is 0
 *   ("tolerableBadRequestsPerBadFlow must be greater than 0"), or when an argument is not a
 *   uint32 (Go's types rule that out).
 * @example
 * ```ts
 * const config = { ...generateTunedStructureConfig(50_000, 1000, 25), includeStats: true };
 * ```
 */
export function generateTunedStructureConfig(
  expectedClientFlows: number,
  bucketsPerLevel: number,
  tolerableBadRequestsPerBadFlow: number,
): FairnessTrackerConfig {
  requireUint32("expectedClientFlows", expectedClientFlows);
  requireUint32("bucketsPerLevel", bucketsPerLevel);
  requireUint32("tolerableBadRequestsPerBadFlow", tolerableBadRequestsPerBadFlow);
  if (tolerableBadRequestsPerBadFlow <= 0) {
    throw new FairnessTrackerError(
      "invalid_argument",
      "tolerableBadRequestsPerBadFlow must be greater than 0",
    );
  }
  const mBad = Math.ceil(expectedClientFlows * percentBadClientFlows) >>> 0;
  const l = Math.max(calculateL(bucketsPerLevel, mBad, lowProbability), minL);
  const pi = 1 / tolerableBadRequestsPerBadFlow;
  return Object.freeze({
    m: bucketsPerLevel,
    l,
    pi,
    pd: pdSlowingFactor * pi,
    lambda: defaultDecayRate,
    rotationFrequencyMs: defaultRotationMs,
    includeStats: false,
    finalProbabilityFunction: minFinalProbability,
  });
}

/**
 * Go's `DefaultFairnessTrackerConfig()`: {@link generateTunedStructureConfig}(1000, 1000, 25),
 * i.e. M = 1000, L = 3, pi = 0.04, pd = 4e-5, λ = 0.01/s, rotation every 5 minutes.
 */
export function defaultFairnessTrackerConfig(): FairnessTrackerConfig {
  return generateTunedStructureConfig(
    defaultExpectedClientFlows,
    defaultBucketsPerLevel,
    defaultTolerableBadRequestsPerBadFlow,
  );
}

function requireUint32(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new FairnessTrackerError(
      "invalid_argument",
      `${name} must be an integer in [0, 2^32 - 1], found ${String(value)}`,
    );
  }
}
