// A client that stops reading is cut off; the others keep being served.
import { once } from "node:events";
import { connect, constants } from "node:http2";
import { toBinary } from "@bufbuild/protobuf";
import { SyncRequestSchema } from "@fair/state-proto";
import { afterEach, expect, test, vi } from "vitest";
import {
  type DeltaTuple,
  deltaUpdate,
  grpcFrame,
  rawSyncStream,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

// gRPC is served by the server's own code, gRPC-Web by Connect: both must let go.
test.each([
  ["gRPC", "application/grpc+proto"],
  ["gRPC-Web", "application/grpc-web+proto"],
])(
  "%s: a stream that stops reading is closed as a slow consumer, and the others keep getting broadcasts",
  async (_protocol, contentType) => {
    server = await startServer();
    // A raw client that subscribes (one StateRequest) and then never reads again.
    const session = connect(`http://${server.running.grpcAddress}`, {
      settings: { initialWindowSize: 65_535 },
    });
    session.on("error", () => {});
    const stalled = rawSyncStream(session, contentType);
    stalled.write(grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))));
    await once(stalled, "response");
    stalled.pause(); // from here on nothing is read: HTTP/2 flow control fills, then the hub's outbox

    const healthy = server.connect();
    const writer = server.connect();
    for (const client of [healthy, writer]) {
      client.send(stateRequest(seed0));
      await client.until(() => client.responses.length === 1, "the subscription");
    }
    // Enough broadcasts to fill the stalled stream's 64 KiB window many times over.
    for (let round = 0; round < 20; round++) {
      const deltas = Array.from({ length: 500 }, (_, i): DeltaTuple => [round % 3, i, 0.001, t0]);
      writer.send(deltaUpdate(seed0, deltas));
    }
    // Broadcasts may arrive coalesced, so count buckets, not messages.
    const buckets = () => healthy.responses.reduce((n, r) => n + r.buckets.length, 0);
    await healthy.until(() => buckets() >= 20 * 500, "every broadcast");

    // Stalls are judged on the server's (fake) clock, at the next publish or sweep.
    server.time.tick(11_000);
    const seen = healthy.responses.length;
    writer.send(deltaUpdate(seed0, [[2, 9999, 0.5, t0]]));
    // The healthy stream is unaffected: the next broadcast still reaches it.
    await healthy.until(() => healthy.responses.length > seen, "a later broadcast");
    const stats = server.running.server.hub.stats();
    expect(stats.slowConsumerCloses).toBe(1);
    expect(stats.subscribers).toBe(2);
    // The server lets go of the stream too: the client, reading nothing, could
    // never receive a status behind its unread data, so the stream is reset.
    // (once() would reject on the reset's "error"; rawSyncStream already handles it.)
    await new Promise((resolve) => stalled.once("close", resolve));
    expect(stalled.rstCode).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    if (contentType === "application/grpc+proto") {
      // The server's own gRPC code ends the handler with the reset. (Through
      // Connect, gRPC-Web's handler stays parked in connect-node's write,
      // which waits for a "drain" a reset stream never emits: see
      // DEPLOYMENT.md, "Which code serves a stream".)
      const registry = server.running.server.metrics.registry;
      await vi.waitUntil(
        async () =>
          /^fair_state_connected_clients 2$/m.test(
            await registry.getSingleMetricAsString("fair_state_connected_clients"),
          ),
        { timeout: 5_000 },
      );
    }
    session.destroy();
  },
);
