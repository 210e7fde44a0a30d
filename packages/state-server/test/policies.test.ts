// The server's policies on both code paths that serve Sync: plain gRPC on
// the server's own path (grpc-sync-handler.ts) and everything else through
// Connect (gRPC-Web here). Both take their decisions from one admission
// (admission.ts) and one service (sync-service.ts), so each policy must
// read the same whichever path carries the stream.
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, constants } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { SyncRequestSchema } from "@fair/state-proto";
import { afterAll, afterEach, describe, expect, test, vi } from "vitest";
import {
  type DeltaTuple,
  deltaUpdate,
  grpcFrame,
  grpcProtobuf,
  grpcWebProtobuf,
  type MakeTransport,
  rawSyncStream,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

let server: TestServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await server?.close();
  server = undefined;
});

const dir = mkdtempSync(join(tmpdir(), "fair-policies-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const token = "tok-policies-0123456789";

const paths: [string, MakeTransport, string][] = [
  ["gRPC (the server's own path)", grpcProtobuf, "application/grpc+proto"],
  ["gRPC-Web (through Connect)", grpcWebProtobuf, "application/grpc-web+proto"],
];

async function metric(name: string): Promise<string> {
  return (await server?.running.server.metrics.registry.getSingleMetricAsString(name)) ?? "";
}

describe.each(paths)("%s", (_path, make, contentType) => {
  test("a missing or unknown token is UNAUTHENTICATED, a token outside its namespaces PERMISSION_DENIED; each is counted", async () => {
    const tokens = join(dir, "tokens");
    writeFileSync(tokens, `${token} checkout\n`);
    server = await startServer({ authTokensFile: tokens });
    const served = server.open(make, {
      authorization: `Bearer ${token}`,
      "fair-state-namespace": "checkout",
    });
    served.send(stateRequest(seed0));
    await served.until(() => served.fullStateReplies(seed0).length === 1, "the full-state reply");

    const refusal = (headers: Record<string, string>) => {
      const stream = server?.open(make, headers);
      stream?.send(stateRequest(seed0));
      return stream?.closed();
    };
    const missing = await refusal({});
    const unknown = await refusal({ authorization: `Bearer ${token}x` });
    const elsewhere = await refusal({
      authorization: `Bearer ${token}`,
      "fair-state-namespace": "search",
    });
    expect(missing?.code).toBe(Code.Unauthenticated);
    expect(unknown?.code).toBe(Code.Unauthenticated);
    expect(unknown?.message).not.toContain(token);
    expect(elsewhere?.code).toBe(Code.PermissionDenied);
    const failures = await metric("fair_state_auth_failures_total");
    for (const reason of ["missing", "unknown", "namespace"]) {
      expect(failures).toContain(`fair_state_auth_failures_total{reason="${reason}"} 1`);
    }
  });

  test("a stream on a connection past maxConnections, when every connection is admitted, is RESOURCE_EXHAUSTED, naming the key", async () => {
    server = await startServer({ maxConnections: 1 });
    // The one connection holds an admitted Sync stream, so it is not closed to make room.
    const holder = connect(`http://${server.running.grpcAddress}`);
    holder.on("error", () => {});
    cleanups.push(() => holder.destroy());
    const held = rawSyncStream(holder, contentType);
    held.write(grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))));
    await once(held, "response");

    const refused = server.open(make);
    refused.send(stateRequest(seed0));
    const error = await refused.closed();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.message).toContain("maxConnections");
    expect(await metric("fair_state_connections_refused_total")).toContain(
      'fair_state_connections_refused_total{reason="max_connections"} 1',
    );
  });

  test("a stream that stops reading is cut off as a slow consumer and reset, and the others keep getting broadcasts", async () => {
    const running = await startServer();
    server = running;
    // A raw client that subscribes (one StateRequest) and then never reads again.
    const session = connect(`http://${running.running.grpcAddress}`, {
      settings: { initialWindowSize: 65_535 },
    });
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const stalled = rawSyncStream(session, contentType);
    stalled.write(grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))));
    await once(stalled, "response");
    stalled.pause(); // from here on nothing is read: HTTP/2 flow control fills, then the hub's outbox

    const healthy = running.connect();
    const writer = running.connect();
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
    running.time.tick(11_000);
    const seen = healthy.responses.length;
    writer.send(deltaUpdate(seed0, [[2, 9999, 0.5, t0]]));
    // The healthy stream is unaffected: the next broadcast still reaches it.
    await healthy.until(() => healthy.responses.length > seen, "a later broadcast");
    const stats = running.running.server.hub.stats();
    expect(stats.slowConsumerCloses).toBe(1);
    expect(stats.subscribers).toBe(2);
    // The server lets go of the stream too: the client, reading nothing, could
    // never receive a status behind its unread data, so the stream is reset.
    // (once() would reject on the reset's "error"; rawSyncStream already handles it.)
    await new Promise((resolve) => stalled.once("close", resolve));
    expect(stalled.rstCode).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    // And its handler ends, on either path: the stream no longer counts.
    await vi.waitUntil(
      async () =>
        /^fair_state_connected_clients 2$/m.test(await metric("fair_state_connected_clients")),
      { timeout: 5_000 },
    );
  });
});
