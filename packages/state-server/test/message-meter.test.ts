// The request budget's meter reads only message prefixes, in parallel with
// whichever reader assembles the messages. It must say, after every chunk,
// exactly what that reader holds: the server's own gRPC reader
// (GrpcFrameReader) is the reference, with connect-node's envelopes framed
// the same way.
import { GrpcFrameReader } from "@fair/state-proto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { MessageMeter, requestFraming } from "../src/message-meter.js";

/** gRPC frames of the given lengths (flag bytes varied), as one body. */
function body(lengths: readonly number[], flags: readonly number[]): Uint8Array {
  const total = lengths.reduce((sum, length) => sum + 5 + length, 0);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  let at = 0;
  lengths.forEach((length, i) => {
    bytes[at] = flags[i % flags.length] ?? 0;
    view.setUint32(at + 1, length);
    bytes.fill(0xab, at + 5, at + 5 + length);
    at += 5 + length;
  });
  return bytes;
}

/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) chunks.push(bytes.subarray(from, point));
    from = Math.max(from, point);
  }
  return chunks;
}

describe("MessageMeter", () => {
  test("holds exactly what the gRPC frame reader buffers after every chunk, however the body is cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 40_000 })), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.constantFrom(0, 0x80, 0xff), { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (lengths, flags, cuts) => {
          const reader = new GrpcFrameReader();
          const meter = new MessageMeter("enveloped", 40_000);
          let messages = 0;
          let startedBefore = 0;
          for (const chunk of chunked(body(lengths, flags), cuts)) {
            messages += reader.push(chunk).length;
            meter.take(chunk);
            expect(meter.held).toBe(reader.buffered);
            // A message has begun for every one complete, and one more while one is unfinished.
            expect(meter.started).toBe(messages + (reader.buffered > 0 ? 1 : 0));
            expect(meter.started).toBeGreaterThanOrEqual(startedBefore);
            startedBefore = meter.started;
          }
          expect(meter.held).toBe(0);
          expect(messages).toBe(lengths.length);
        },
      ),
    );
  });

  test("a prefix claiming more than maxMessageBytes stops it: the transport refuses that message", () => {
    const meter = new MessageMeter("enveloped", 1_000);
    meter.take(body([10], [0]));
    meter.take(body([2_000], [0]).subarray(0, 300));
    expect(meter).toMatchObject({ held: 0, oversized: true });
    meter.take(new Uint8Array(500));
    expect(meter.held).toBe(0);
  });

  test("a whole-body message (a Connect unary request) is held until its body ends", () => {
    const meter = new MessageMeter("whole", 1_000);
    meter.take(new Uint8Array(300));
    meter.take(new Uint8Array(200));
    expect(meter).toMatchObject({ held: 500, started: 1 });
    meter.end();
    expect(meter.held).toBe(0);
  });

  test("every gRPC, gRPC-Web and Connect streaming content type is enveloped; Connect unary bodies are whole", () => {
    for (const type of [
      "application/grpc",
      "application/grpc+proto",
      "application/grpc-web+json",
      "application/connect+proto",
      "Application/Connect+JSON",
    ]) {
      expect(requestFraming(type), type).toBe("enveloped");
    }
    for (const type of ["application/proto", "application/json; charset=utf-8", undefined]) {
      expect(requestFraming(type), String(type)).toBe("whole");
    }
  });
});
