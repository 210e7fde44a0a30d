/**
 * gRPC length-prefixed messages over an HTTP/2 stream, by hand: the load
 * generator writes pre-encoded bytes and walks responses itself, so that
 * neither protobuf encoding nor full decoding limits what it can send or
 * count (see the README's "generator on its own" figure).
 */

/** A gRPC message frame: flag byte 0 (uncompressed), big-endian length, bytes. */
export function frame(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/**
 * Reassembles gRPC message frames from the chunks of a response body. Chunks
 * are joined once per message, when it is complete: joining on every chunk
 * copied a 100 KB message once per 16 KB chunk.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** The length of the message being assembled, prefix included, once its prefix is in. */
  #needed = 0;

  /** Returns every message completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      if (this.#needed === 0) {
        if (this.#buffered < 5) break;
        this.#needed = 5 + this.#take(5, false).readUInt32BE(1);
      }
      if (this.#buffered < this.#needed) break;
      messages.push(this.#take(this.#needed, true).subarray(5));
      this.#needed = 0;
    }
    return messages;
  }

  /** The first `length` bytes buffered, joined if they span chunks; removed if `consume`. */
  #take(length: number, consume: boolean): Buffer {
    let first = this.#chunks[0] as Buffer;
    if (first.length < length) {
      first = Buffer.concat(this.#chunks);
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
