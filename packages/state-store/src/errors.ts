/**
 * Why a store refused an input:
 *
 * - `invalid_argument`: a value of the wrong type or form (not finite, not an
 *   integer, negative, a seed that is not a window start).
 * - `out_of_range`: a well-formed value beyond a bound (an id at or past
 *   `maxRows` / `maxCols`, `|delta| > 1`, a timestamp past 2^53 − 1, a seed
 *   past 2^64 − 1).
 * - `invalid_option`: an option of the store itself is unusable.
 * - `snapshot_version`: a snapshot in a format this version cannot read.
 * - `snapshot_malformed`: a snapshot that does not decode or contradicts
 *   itself or the store's options.
 * - `unavailable`: a remote store (Redis) could not be reached or did not
 *   answer in time. The input was valid; retrying later may succeed. An
 *   update refused this way may or may not have been applied (the request
 *   may have reached the store before the connection failed).
 * - `limit_exceeded`: a valid update that would take its namespace past
 *   `maxSeedsPerNamespace` live seeds, its seed past `maxBucketsPerSeed`
 *   buckets, or the store past `maxNamespaces` namespaces holding buckets.
 *   Nothing of it was applied; the message names the option.
 *
 * A server maps the first two to gRPC `INVALID_ARGUMENT`, `unavailable` to
 * `UNAVAILABLE`, `limit_exceeded` to `RESOURCE_EXHAUSTED`.
 */
export type StoreErrorCode =
  | "invalid_argument"
  | "out_of_range"
  | "invalid_option"
  | "snapshot_version"
  | "snapshot_malformed"
  | "unavailable"
  | "limit_exceeded";

/**
 * The one error type of `@fair/state-store`. Every refusal names the field
 * that was wrong, in the spelling the caller used: proto names for a
 * `DeltaUpdate` (`deltas[3].delta_prob`), parameter names for `applyDelta`
 * (`deltaProb`), option names for options (`windowMs`).
 *
 * When a store throws it, nothing of the refused input has been applied.
 *
 * @example
 * ```ts
 * try {
 *   store.applyUpdate(update);
 * } catch (error) {
 *   if (error instanceof StoreError) console.warn(error.code, error.field);
 *   throw error;
 * }
 * ```
 */
export class StoreError extends Error {
  override name = "StoreError";
  /** What kind of refusal this is. */
  readonly code: StoreErrorCode;
  /** The field that was wrong, e.g. `deltas[3].row_id`. */
  readonly field: string;

  /**
   * @param code - what kind of refusal this is
   * @param field - the field that was wrong
   * @param problem - what is wrong with it, without the field name
   * @param cause - the underlying error, if one was translated
   */
  constructor(code: StoreErrorCode, field: string, problem: string, cause?: unknown) {
    super(`${field}: ${problem}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.field = field;
  }
}
