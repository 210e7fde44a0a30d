import { FairnessTrackerError } from "./errors.js";

/**
 * Who a request comes from: raw bytes, or a string hashed as its UTF-8 bytes (what Go's
 * `[]byte(s)` gives, and what `TextEncoder` produces, lone surrogates becoming U+FFFD). The
 * same id lands in the same buckets as in the Go library for the same murmur seed.
 */
export type ClientId = string | Uint8Array;

const utf8 = new TextEncoder();

/**
 * Turns client ids into bytes without allocating per call: ASCII strings are copied by hand into
 * a reusable buffer (faster than crossing into `TextEncoder` for short ids), other strings go
 * through `TextEncoder.encodeInto`, and byte arrays are used as they are. One per tracker; the
 * result is valid until the next `encode`.
 */
export class ClientIdEncoder {
  /** The bytes of the last encoded id: `bytes[0, length)`. */
  bytes: Uint8Array = new Uint8Array(64);
  /** How many of `bytes` belong to the last encoded id. */
  length = 0;
  #scratch: Uint8Array = this.bytes;

  /** Encodes `id` into {@link bytes} and {@link length}. */
  encode(id: ClientId): void {
    if (typeof id === "string") {
      this.#encodeString(id);
    } else if (id instanceof Uint8Array) {
      this.bytes = id;
      this.length = id.length;
    } else {
      throw new FairnessTrackerError(
        "invalid_argument",
        `a client id must be a string or a Uint8Array, found ${typeof id}`,
      );
    }
  }

  #encodeString(id: string): void {
    const n = id.length;
    // Three bytes per UTF-16 unit is the most UTF-8 needs (a surrogate pair is 2 units, 4 bytes).
    if (this.#scratch.length < 3 * n) this.#scratch = new Uint8Array(3 * n);
    const out = this.#scratch;
    this.bytes = out;
    for (let i = 0; i < n; i++) {
      const unit = id.charCodeAt(i);
      if (unit >= 0x80) {
        this.length = utf8.encodeInto(id, out).written;
        return;
      }
      out[i] = unit;
    }
    this.length = n;
  }
}
