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

/**
 * What {@link FairnessTrackerOptions.onDecision} receives once per `registerRequest`: enough to
 * count and label decisions, nothing that costs a lookup. A fresh object each call, so a hook
 * may keep it.
 */
export interface Decision {
  /** The `shouldThrottle` the call returns. */
  readonly throttled: boolean;
  /**
   * The probability the draw was compared to (`random() <= probability`): the main structure's
   * final probability, the `stats.finalProbability` the same call reports when `includeStats`
   * is on. Local mode draws for the secondary too; that draw decides nothing and is not here.
   */
  readonly probability: number;
  /** The tracker's `mode`. */
  readonly mode: "local" | "distributed";
  /**
   * The structure the decision read, as `structureIds.main` names it: local mode, Go's
   * structure id; distributed mode, the window seed (Unix ms).
   */
  readonly structureId: number;
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
