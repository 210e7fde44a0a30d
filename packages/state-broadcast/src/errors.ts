/**
 * What went wrong, as a stable string a caller can switch on:
 *
 * - `invalid_option`: a {@link HubOptions} field is out of range; the message names it.
 * - `invalid_argument`: a call was given a value of the wrong kind (for example a seed that is not a bigint).
 * - `invalid_state`: a call that the hub or subscription cannot serve in its current state
 *   (publishing before `start()`, restarting a stopped hub, two concurrent `next()` calls).
 * - `no_encoder`: `encode()` was called on a hub configured without an encoder.
 */
export type BroadcastErrorCode =
  | "invalid_option"
  | "invalid_argument"
  | "invalid_state"
  | "no_encoder";

/**
 * The one error type `@fair/state-broadcast` throws. Callers branch on
 * {@link BroadcastError.code}; the message is for people.
 *
 * @example
 * ```ts
 * try {
 *   new Hub({ maxBucketsPerBatch: 0 });
 * } catch (error) {
 *   if (error instanceof BroadcastError && error.code === "invalid_option") console.error(error.message);
 * }
 * ```
 */
export class BroadcastError extends Error {
  override readonly name = "BroadcastError";
  /** Machine-readable cause; see {@link BroadcastErrorCode}. */
  readonly code: BroadcastErrorCode;

  constructor(code: BroadcastErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
