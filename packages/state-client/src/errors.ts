/**
 * Why the client reports a problem:
 *
 * - `invalid_option`: an option of the client itself is unusable.
 * - `timeout`: a full-state request got no complete reply in time.
 * - `aborted`: the caller's signal aborted a full-state request.
 * - `closed`: the client was closed while the request was waiting.
 * - `config_mismatch`: the server's window or decay rate differs from the
 *   client's, so the two would not agree on buckets or decay.
 * - `stream_error`: the stream to the server failed; the client reconnects.
 */
export type StateClientErrorCode =
  | "invalid_option"
  | "timeout"
  | "aborted"
  | "closed"
  | "config_mismatch"
  | "stream_error";

/** The one error type of `@fair/state-client`. */
export class StateClientError extends Error {
  override name = "StateClientError";
  /** What kind of problem this is. */
  readonly code: StateClientErrorCode;

  constructor(code: StateClientErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }

  /**
   * What `JSON.stringify` shows, as when `stats()` is logged: an Error's
   * message is not an own enumerable property, so without this the JSON
   * would be `{ name, code }` and say nothing of what went wrong.
   */
  toJSON(): { name: string; code: StateClientErrorCode; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}
