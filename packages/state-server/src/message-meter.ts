import { GRPC_PREFIX_BYTES } from "@fair/state-proto";

/**
 * How a request body is cut into messages: `"enveloped"` — gRPC, gRPC-Web
 * and the Connect protocol's streams, each message behind a 5-byte prefix
 * (a flag byte, a big-endian uint32 length) — or `"whole"`, a Connect unary
 * body, one message that ends with the body.
 */
export type RequestFraming = "enveloped" | "whole";

/** The framing of a request with `contentType`: only Connect's unary bodies are not enveloped. */
export function requestFraming(contentType: string | undefined): RequestFraming {
  const type = contentType?.toLowerCase() ?? "";
  return type.startsWith("application/grpc") || type.startsWith("application/connect+")
    ? "enveloped"
    : "whole";
}

/**
 * Follows one request body chunk by chunk, as the reader that assembles its
 * messages receives them, and says how many bytes of the message not yet
 * complete that reader holds: {@link MessageMeter.held}. It reads only the
 * prefixes, never copies a byte, and is the same code for the server's own
 * gRPC path and for connect-node, which reads its requests itself.
 *
 * A message whose prefix claims more than `maxMessageBytes` is the
 * transport's to refuse (both refuse it at its prefix, before buffering
 * it): from then on the meter holds nothing and counts nothing
 * ({@link MessageMeter.oversized}).
 */
export class MessageMeter {
  readonly #framing: RequestFraming;
  readonly #maxMessageBytes: number;
  /** Bytes of the current message's prefix seen so far (0 to 5). */
  #prefixBytes = 0;
  /** The length the prefix claims, built up byte by byte when a prefix spans chunks. */
  #length = 0;
  /** Bytes of the current message's body still to come, once its prefix is complete. */
  #remaining = 0;
  #held = 0;
  #started = 0;
  #oversized = false;

  constructor(framing: RequestFraming, maxMessageBytes: number) {
    this.#framing = framing;
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Bytes held of the message not yet complete, its prefix included; 0 between messages. */
  get held(): number {
    return this.#held;
  }

  /**
   * How many messages have begun (their first byte has arrived): a change
   * while {@link MessageMeter.held} is above 0 means the unfinished message
   * is a new one.
   */
  get started(): number {
    return this.#started;
  }

  /** Whether a prefix claimed more than `maxMessageBytes`: the meter has stopped. */
  get oversized(): boolean {
    return this.#oversized;
  }

  /** Takes the next chunk of the body. */
  take(chunk: Uint8Array): void {
    if (this.#oversized || chunk.length === 0) return;
    if (this.#framing === "whole") {
      if (this.#held === 0) this.#started++;
      this.#held += chunk.length;
      if (this.#held > this.#maxMessageBytes) this.#stop();
      return;
    }
    let at = 0;
    while (at < chunk.length) {
      if (this.#prefixBytes < GRPC_PREFIX_BYTES) {
        if (this.#prefixBytes === 0) {
          this.#started++;
          this.#length = 0;
        }
        if (this.#prefixBytes === 0 && chunk.length - at >= GRPC_PREFIX_BYTES) {
          // The usual case: the whole prefix in this chunk.
          this.#length =
            (chunk[at + 1] as number) * 0x1000000 +
            (((chunk[at + 2] as number) << 16) |
              ((chunk[at + 3] as number) << 8) |
              (chunk[at + 4] as number));
          this.#prefixBytes = GRPC_PREFIX_BYTES;
          at += GRPC_PREFIX_BYTES;
        } else {
          // A prefix split across chunks: byte 0 is the flag, bytes 1–4 the length.
          if (this.#prefixBytes > 0) this.#length = this.#length * 256 + (chunk[at] as number);
          this.#prefixBytes++;
          at++;
        }
        this.#held = this.#prefixBytes;
        if (this.#prefixBytes < GRPC_PREFIX_BYTES) continue;
        if (this.#length > this.#maxMessageBytes) {
          this.#stop();
          return;
        }
        this.#remaining = this.#length;
      } else {
        const taken = Math.min(this.#remaining, chunk.length - at);
        this.#remaining -= taken;
        this.#held += taken;
        at += taken;
      }
      if (this.#remaining === 0) {
        // Complete: its reader hands it on and lets go of it.
        this.#prefixBytes = 0;
        this.#held = 0;
      }
    }
  }

  /** The body has ended: a whole-body message is complete. */
  end(): void {
    this.#held = 0;
  }

  #stop(): void {
    this.#oversized = true;
    this.#held = 0;
  }
}
