/**
 * What happened when a request used the resource (Go's `request.Outcome`): a `failure` means
 * the resource was short (Go adds `Pi` to the client's buckets), a `success` that it was not
 * (subtracts `Pd`). Report neither for throttled requests, user errors or timeouts. Any other
 * value a JavaScript caller passes counts as a failure, as any non-success `Outcome` does in Go.
 */
export type Outcome = "success" | "failure";

/** Debug information about one decision (Go's `ResultStats`). */
export interface ResultStats {
  /** The probability the decision used, exactly as the final function returned it. */
  readonly finalProbability: number;
  /** Per level, the column of the client's bucket (`h_l % M`). */
  readonly bucketIndexes: readonly number[];
  /**
   * Per level, the bucket's probability after decay: the very array the final function
   * received (as in Go), so a function that changed it shows its changes here.
   */
  readonly bucketProbabilities: readonly number[];
}

/** The decision for one request (Go's `RegisterRequestResult`). */
export interface RegisterRequestResult {
  /** Whether to turn the request away. */
  readonly shouldThrottle: boolean;
  /** Present only when the config's `includeStats` is true. */
  readonly stats?: ResultStats;
}

// Without stats a decision is one of two values; sharing them keeps the hot path allocation-free.
export const throttleResult: RegisterRequestResult = Object.freeze({ shouldThrottle: true });
export const admitResult: RegisterRequestResult = Object.freeze({ shouldThrottle: false });

/** Builds the result of a decision. */
export function decision(
  shouldThrottle: boolean,
  stats: ResultStats | undefined,
): RegisterRequestResult {
  if (stats === undefined) return shouldThrottle ? throttleResult : admitResult;
  return { shouldThrottle, stats };
}
