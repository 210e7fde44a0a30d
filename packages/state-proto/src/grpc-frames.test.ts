import { expect, test } from "vitest";
import { GRPC_PREFIX_BYTES, GrpcFrameReader } from "./grpc-frames.js";

function frame(message: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(GRPC_PREFIX_BYTES + message.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, GRPC_PREFIX_BYTES);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

test("messages survive being split across chunks at any byte", () => {
  const messages = [Uint8Array.of(1, 2, 3), new Uint8Array(0), new TextEncoder().encode("hello")];
  const stream = concat(messages.map((m) => frame(m)));
  for (let cut = 0; cut <= stream.length; cut++) {
    const reader = new GrpcFrameReader();
    const out = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    expect(out).toEqual(messages);
    expect(reader.buffered).toBe(0);
  }
});

test("a message arriving one byte at a time comes out once, whole", () => {
  const message = Uint8Array.from({ length: 40 }, (_, i) => i);
  const stream = frame(message);
  const reader = new GrpcFrameReader();
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) out.push(...reader.push(stream.subarray(i, i + 1)));
  expect(out).toEqual([message]);
});

test("the check sees each prefix before the message's bytes are held, and can refuse it", () => {
  const seen: [boolean, number][] = [];
  const reader = new GrpcFrameReader((compressed, length) => {
    seen.push([compressed, length]);
    if (length > 10) throw new Error(`${length} bytes is too many`);
  });
  expect(reader.push(frame(Uint8Array.of(7), 1))).toEqual([Uint8Array.of(7)]);
  // Only the prefix of the large frame has arrived: it is refused already.
  expect(() => reader.push(frame(new Uint8Array(1000)).subarray(0, GRPC_PREFIX_BYTES))).toThrow(
    "1000 bytes is too many",
  );
  expect(seen).toEqual([
    [true, 1],
    [false, 1000],
  ]);
});

test("bytes of an incomplete message are counted as buffered", () => {
  const reader = new GrpcFrameReader();
  expect(reader.push(frame(Uint8Array.of(1, 2, 3)).subarray(0, 6))).toEqual([]);
  expect(reader.buffered).toBe(6);
});
