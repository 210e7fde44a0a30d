import { FairnessTrackerError } from "./errors.js";

/**
 * The smallest of the probabilities, starting from 1 (Go's `MinFinalProbabilityFunction`), so
 * the result is at most 1 even for inputs above 1; NaN propagates. The default: a client is
 * throttled only as much as its least-loaded bucket, so an innocent client suffers only when
 * every one of its buckets collides with a heavy hitter.
 *
 * @throws FairnessTrackerError (`invalid_argument`) for an empty array, where Go calls
 *   `logger.Fatalf`. A tracker never passes one: it has at least one level.
 */
export function minFinalProbability(probabilities: readonly number[]): number {
  requireSome(probabilities);
  let min = 1;
  for (const p of probabilities) min = Math.min(min, p);
  return min;
}

/**
 * The mean of the probabilities (Go's `MeanFinalProbabilityFunction`): their sum over their
 * count, with no epsilon.
 *
 * @throws FairnessTrackerError (`invalid_argument`) for an empty array, where Go calls
 *   `logger.Fatalf`.
 */
export function meanFinalProbability(probabilities: readonly number[]): number {
  requireSome(probabilities);
  let sum = 0;
  for (const p of probabilities) sum += p;
  return sum / probabilities.length;
}

function requireSome(probabilities: readonly number[]): void {
  if (probabilities.length === 0) {
    throw new FairnessTrackerError(
      "invalid_argument",
      "Cannot compute final probability with empty buckets slice",
    );
  }
}
