// Random and malformed input against the running server, through a raw
// HTTP/2 client (so nothing on our side shapes the bytes): every stream gets
// a status, the server keeps serving, and the shared state is untouched.
import { once } from "node:events";
import { type ClientHttp2Session, connect } from "node:http2";
import fc from "fast-check";
import { afterAll, beforeAll, expect, test } from "vitest";
import { deltaUpdate, rawSyncStream, seed0, startServer, type TestServer, t0 } from "./harness.js";

let server: TestServer;
let session: ClientHttp2Session;
beforeAll(async () => {
  server = await startServer({ maxMessageBytes: 4096 });
  session = connect(`http://${server.running.grpcAddress}`);
  session.on("error", () => {});
  // One known bucket, to check afterwards that nothing touched it.
  const writer = server.connect();
  writer.send(deltaUpdate(seed0, [[0, 1, 0.5, t0]]));
  await writer.until(() => writer.responses.length === 1);
});
afterAll(async () => {
  session.destroy();
  await server.close();
});

/** Sends `body` as a Sync request and resolves with the grpc-status the stream ended with. */
async function send(body: Buffer): Promise<string> {
  const stream = rawSyncStream(session);
  stream.on("data", () => {});
  let status = "";
  stream.on("response", (headers) => {
    status = String(headers["grpc-status"] ?? status);
  });
  stream.on("trailers", (trailers) => {
    status = String(trailers["grpc-status"] ?? status);
  });
  stream.end(body);
  await once(stream, "close");
  return status;
}

/** A gRPC frame header: compressed flag and a length that may lie. */
function header(flag: number, length: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = flag;
  out.writeUInt32BE(length >>> 0, 1);
  return out;
}

test("random bytes, lying frame headers and oversized frames: always a status, never a crash, state untouched", async () => {
  const before = await server.running.server.store.getSeed(seed0);
  const body = fc.oneof(
    // Arbitrary bytes, framed honestly: not protobuf, or protobuf of the wrong shape.
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([header(0, b.length), b])),
    // Arbitrary bytes with no framing at all.
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    // A frame that claims more than it carries, or more than the size limit.
    fc
      .tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 }))
      .map(([n, b]) => Buffer.concat([header(0, n), b])),
    // A compressed flag with no compression negotiated.
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([header(1, b.length), b])),
    // An oversized but well-framed message.
    fc
      .integer({ min: 4097, max: 20_000 })
      .map((n) => Buffer.concat([header(0, n), Buffer.alloc(n, 0x0a)])),
  );
  await fc.assert(
    fc.asyncProperty(body, async (bytes) => {
      const status = await send(bytes);
      // "0" is OK: bytes that decode as an empty or unknown-field request are ignored.
      expect(status).toMatch(/^\d+$/);
    }),
    { numRuns: 150 },
  );
  expect(await server.running.server.store.getSeed(seed0)).toEqual(before);
  expect(server.running.server.health.serving).toBe(true);
  const afterwards = server.connect();
  afterwards.send(deltaUpdate(seed0, [[0, 2, 0.25, t0]]));
  await afterwards.until(() => afterwards.responses.length === 1);
});
