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

/** Reassembles gRPC message frames from the chunks of a response body. */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  /** Returns every message completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const messages: Buffer[] = [];
    while (data.length >= 5) {
      const length = data.readUInt32BE(1);
      if (data.length < 5 + length) break;
      messages.push(data.subarray(5, 5 + length));
      data = data.subarray(5 + length);
    }
    this.#pending = data;
    return messages;
  }
}
