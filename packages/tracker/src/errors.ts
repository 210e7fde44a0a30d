/**
 * What went wrong, as a stable string a caller can switch on:
 *
 * - `invalid_config`: a {@link FairnessTrackerConfig} failed validation (docs/fair-spec.md §3 plus the
 *   port's stricter checks); the message says which value, in Go's wording where Go has one.
 * - `invalid_argument`: a function was given a value it cannot use (an empty probability list,
 *   `tolerableBadRequestsPerBadFlow` of 0, a client id that is neither a string nor bytes).
 * - `invalid_option`: a {@link FairnessTrackerOptions} field is unusable; the message names it.
 * - `invalid_state`: a call the tracker cannot serve in its mode (`rotate()` in distributed mode).
 * - `rotation_failed`: a scheduled rotation could not create its new structure; rotation stops,
 *   as it does in Go.
 * - `decision_hook_failed`: the `onDecision` option threw (`cause` holds what it threw); only
 *   ever passed to `onError`, never thrown. The decision stood.
 */
export type FairnessTrackerErrorCode =
  | "invalid_config"
  | "invalid_argument"
  | "invalid_option"
  | "invalid_state"
  | "rotation_failed"
  | "decision_hook_failed"
  | "config_mismatch";

/**
 * The one error type `@fair/tracker` throws. It plays the part of Go's `BaseError`,
 * `DataError` and `FairnessTrackerError` at once: `message` is the error's own text followed,
 * when it wraps another error, by `": "` and that error's message (Go's `Error()` format), and
 * `cause` holds the wrapped error (Go's `Unwrap()`).
 *
 * @example
 * ```ts
 * try {
 *   new FairnessTracker({ ...defaultFairnessTrackerConfig(), pd: 0.5 });
 * } catch (error) {
 *   if (error instanceof FairnessTrackerError && error.code === "invalid_config") console.error(error.message);
 * }
 * ```
 */
export class FairnessTrackerError extends Error {
  override readonly name = "FairnessTrackerError";
  /** Machine-readable cause; see {@link FairnessTrackerErrorCode}. */
  readonly code: FairnessTrackerErrorCode;

  /**
   * @param code - what kind of failure this is
   * @param message - the error's own text, without the wrapped error's
   * @param cause - the error this one wraps, if any; its message is appended after `": "`
   */
  constructor(code: FairnessTrackerErrorCode, message: string, cause?: unknown) {
    // Only an error that wraps one gets a `cause` property, as Go's Unwrap() returns nil otherwise.
    super(
      cause === undefined ? message : `${message}: ${describe(cause)}`,
      cause === undefined ? undefined : { cause },
    );
    this.code = code;
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
