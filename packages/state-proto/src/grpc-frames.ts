/**
 * gRPC length-prefixed messages on an HTTP/2 stream: a flag byte (bit 0:
 * compressed), a big-endian uint32 length, then the message.
 */

/** Bytes of the prefix before every gRPC message. */
export const GRPC_PREFIX_BYTES = 5;

/** Checks a frame's prefix as soon as it arrives (throw to refuse it); see {@link GrpcFrameReader}. */
export type GrpcPrefixCheck = (compressed: boolean, length: number) => void;

/**
 * Reassembles gRPC messages from the chunks of a stream. A message's prefix
 * is handed to `check` as soon as it arrives, before its bytes are buffered,
 * so an oversized one can be refused at once. Chunks are joined once per
 * message, when it is complete: joining on every chunk copies a large
 * message once per 16 KiB chunk.
 */
export class GrpcFrameReader {
  readonly #check: GrpcPrefixCheck | undefined;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** The length of the frame being assembled, prefix included, once its prefix is in. */
  #needed = 0;

  constructor(check?: GrpcPrefixCheck) {
    this.#check = check;
  }

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Returns every message `chunk` completes (the bytes after each prefix). */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const messages: Uint8Array[] = [];
    for (;;) {
      if (this.#needed === 0) {
        if (this.#buffered < GRPC_PREFIX_BYTES) break;
        const prefix = this.#take(GRPC_PREFIX_BYTES, false);
        const length = new DataView(prefix.buffer, prefix.byteOffset, GRPC_PREFIX_BYTES).getUint32(
          1,
        );
        this.#check?.(((prefix[0] as number) & 1) === 1, length);
        this.#needed = GRPC_PREFIX_BYTES + length;
      }
      if (this.#buffered < this.#needed) break;
      messages.push(this.#take(this.#needed, true).subarray(GRPC_PREFIX_BYTES));
      this.#needed = 0;
    }
    return messages;
  }

  /** The first `length` bytes buffered, joined if they span chunks; removed if `consume`. */
  #take(length: number, consume: boolean): Uint8Array {
    let first = this.#chunks[0] as Uint8Array;
    if (first.length < length) {
      const joined = new Uint8Array(this.#buffered);
      let offset = 0;
      for (const chunk of this.#chunks) {
        joined.set(chunk, offset);
        offset += chunk.length;
      }
      first = joined;
      this.#chunks = [first];
    }
    if (!consume) return first;
    const taken = first.subarray(0, length);
    this.#buffered -= length;
    if (first.length === length) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(length);
    return taken;
  }
}
