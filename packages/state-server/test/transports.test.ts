// The same Sync exchange over every transport the server speaks: gRPC with
// protobuf (served on the HTTP/2 stream directly, grpc-sync-handler.ts),
// gRPC-Web (Connect, encoded-once carriers) and the Connect protocol with
// JSON (Connect, message objects). Each must see the same headers,
// broadcasts, full-state replies and refusals.
import { once } from "node:events";
import { connect } from "node:http2";
import { Code } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { DECAY_RATE_HEADER, WINDOW_MS_HEADER } from "@fair/state-proto";
import { afterEach, describe, expect, test } from "vitest";
import {
  bucketsPerPart,
  connectBinary,
  connectJson as connectJsonEncoding,
  grpcFrames,
  type SyncEncoding,
} from "../src/responses.js";
import {
  byKey,
  connectJson,
  deltaUpdate,
  fillSeed,
  grpcFrame,
  grpcProtobuf,
  grpcWebProtobuf,
  type MakeTransport,
  plain,
  rawSyncStream,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

let server: TestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Each transport, and how the server encodes its messages. */
const transports: [string, MakeTransport, SyncEncoding<unknown>][] = [
  ["gRPC, protobuf", grpcProtobuf, grpcFrames],
  ["gRPC-Web, protobuf", grpcWebProtobuf, connectBinary],
  ["Connect, JSON", connectJson, connectJsonEncoding],
];

describe.each(transports)("%s", (_name, make, encoding) => {
  test("headers, a broadcast and a full-state reply, as every transport gets them", async () => {
    server = await startServer();
    const sync = server.open(make);
    sync.send(
      deltaUpdate(seed0, [
        [0, 3, 0.25, t0],
        [1, 4, 0.5, t0 + 1],
      ]),
      stateRequest(seed0),
    );
    await sync.until(() => sync.fullStateReplies(seed0).length === 1, "the full-state reply");
    const expected = [
      { rowId: 0, colId: 3, prob: 0.25, lastUpdateTimeMs: t0 },
      { rowId: 1, colId: 4, prob: 0.5, lastUpdateTimeMs: t0 + 1 },
    ];
    const [broadcast, reply] = sync.responses;
    expect(broadcast?.fullState).toBe(false);
    expect(broadcast?.seed).toBe(seed0);
    expect(plain(broadcast ?? fail())).toEqual(expected);
    expect(reply).toMatchObject({ seed: seed0, fullState: true, fullStateLast: true });
    expect(plain(reply ?? fail()).sort((a, b) => a.rowId - b.rowId)).toEqual(expected);
    expect(sync.headers?.get(WINDOW_MS_HEADER)).toBe(String(server.config.windowMs));
    expect(sync.headers?.get(DECAY_RATE_HEADER)).toBe(String(server.config.decayRatePerSecond));
    sync.end();
    expect(await sync.closed()).toBeUndefined();
  });

  test("a full state of many parts arrives complete, each part within the cap for the transport's encoding", async () => {
    server = await startServer();
    const expected = await fillSeed(server.running.server.store, 20_000);
    const cap = bucketsPerPart(server.config.maxMessageBytes, encoding);
    const sync = server.open(make);
    sync.send(stateRequest(seed0));
    await sync.until(
      () => sync.fullStateReplies(seed0).some((r) => r.fullStateLast),
      "the last part",
    );
    const parts = sync.fullStateReplies(seed0);
    expect(parts).toHaveLength(Math.ceil(20_000 / cap));
    for (const part of parts) expect(part.buckets.length).toBeLessThanOrEqual(cap);
    expect(byKey(sync.view(seed0))).toEqual(expected);
  });

  test("a bad delta ends the stream with INVALID_ARGUMENT naming the field", async () => {
    server = await startServer();
    const sync = server.open(make);
    sync.send(deltaUpdate(seed0, [[0, 1, 2, t0]]));
    const error = await sync.closed();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.message).toContain("deltas[0].delta_prob");
    expect(await server.running.server.store.getSeed(seed0)).toEqual([]);
  });
});

test("a gRPC stream with compression the server does not accept goes to Connect, which refuses it", async () => {
  server = await startServer();
  const sync = server.open((baseUrl, sessionManager) =>
    createGrpcTransport({
      baseUrl,
      sessionManager,
      sendCompression: compressionGzip,
      compressMinBytes: 1,
    }),
  );
  sync.send(stateRequest(seed0));
  const error = await sync.closed();
  expect(error?.code).toBe(Code.Unimplemented);
  expect(error?.message).toContain("gzip");
});

test("gRPC streams are decoded by the server's own reader: bytes that are not a SyncRequest get INVALID_ARGUMENT saying where", async () => {
  server = await startServer();
  const session = connect(`http://${server.running.grpcAddress}`);
  try {
    const stream = rawSyncStream(session);
    let trailers: Record<string, unknown> = {};
    stream.on("trailers", (received) => {
      trailers = received;
    });
    // delta_update (field 1) whose length runs past the end of the message
    stream.end(grpcFrame(Uint8Array.from([0x0a, 0x10, 0x08, 0x01])));
    stream.resume();
    await once(stream, "close");
    expect(trailers["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(decodeURIComponent(String(trailers["grpc-message"]))).toMatch(
      /not a valid SyncRequest: a length of 16 runs past the end of the message \(at byte \d+\)/,
    );
  } finally {
    session.close();
  }
});

function fail(): never {
  throw new Error("missing response");
}
