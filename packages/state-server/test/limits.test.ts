// Limits on connections, streams and what a namespace may hold: each
// refusal has a status naming the key to raise and a metric; nothing of a
// refused update is applied, and other streams carry on.
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type ClientHttp2Session, connect } from "node:http2";
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  StateService,
  SyncRequestSchema,
} from "@fair/state-proto";
import { Conditions } from "@fair/testing";
import type { Gauge } from "prom-client";
import { afterEach, describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../src/index.js";
import {
  deltaUpdate,
  grpcFrame,
  grpcProtobuf,
  rawSyncStream,
  SyncClient,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
  windowMs,
} from "./harness.js";

let server: TestServer;
/** What a test opened besides the server and its clients; closed after it, whatever happens. */
const extras: (() => void)[] = [];
afterEach(async () => {
  for (const close of extras.splice(0).reverse()) close();
  await server?.close();
});

test("past maxStreams a new stream gets RESOURCE_EXHAUSTED naming the limit; one closing makes room", async () => {
  server = await startServer({ maxStreams: 2 });
  const [a, b] = [server.connect(), server.connect()];
  for (const client of [a, b]) {
    client.send(stateRequest(seed0));
    await client.until(() => client.responses.length === 1);
  }
  const third = server.connect();
  third.send(stateRequest(seed0));
  const error = await third.closed();
  expect(error?.code).toBe(Code.ResourceExhausted);
  expect(error?.message).toContain("maxStreams");

  a.end();
  await a.closed();
  const fourth = server.connect();
  fourth.send(stateRequest(seed0));
  await fourth.until(() => fourth.responses.length === 1);
  const metrics = await server.running.server.metrics.registry.getSingleMetricAsString(
    "fair_state_streams_refused_total",
  );
  expect(metrics).toContain('fair_state_streams_refused_total{reason="max_streams"} 1');
});

test("the server announces maxStreamsPerConnection as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
  server = await startServer({ maxStreamsPerConnection: 3 });
  const session = connect(`http://${server.running.grpcAddress}`);
  try {
    await once(session, "remoteSettings");
    expect(session.remoteSettings.maxConcurrentStreams).toBe(3);
  } finally {
    session.destroy();
  }
});

test("a stream sending more than maxRequestsPerSecond is ended with RESOURCE_EXHAUSTED; others carry on", async () => {
  server = await startServer({ maxRequestsPerSecond: 5 });
  const calm = server.connect();
  const flood = server.connect();
  // Fake time stands still: the burst allowance is all there is.
  for (let i = 0; i < 5; i++) flood.send(stateRequest(seed0));
  await flood.until(() => flood.responses.length === 5);
  server.time.tick(1_000); // a second later the stream may send 5 more
  for (let i = 0; i < 6; i++) flood.send(stateRequest(seed0));
  const error = await flood.closed();
  expect(error?.code).toBe(Code.ResourceExhausted);
  expect(error?.message).toContain("maxRequestsPerSecond");
  expect(flood.responses.length).toBeGreaterThanOrEqual(5);

  calm.send(stateRequest(seed0));
  await calm.until(() => calm.responses.length === 1);
  const metrics = await server.running.server.metrics.registry.getSingleMetricAsString(
    "fair_state_streams_refused_total",
  );
  expect(metrics).toContain('reason="max_requests_per_second"} 1');
});

/** A Sync client on a connection of its own, not the harness's shared one. */
function ownConnection(address: string) {
  const sessions = new Http2SessionManager(`http://${address}`);
  const transport = createGrpcTransport({ baseUrl: `http://${address}`, sessionManager: sessions });
  const client = createClient(StateService, transport);
  const streams: SyncClient[] = [];
  extras.push(() => {
    for (const stream of streams) stream.end();
    sessions.abort();
  });
  return {
    transport,
    /** Closes the connection, with whatever streams it carries. */
    close(): void {
      sessions.abort();
    },
    sync(): SyncClient {
      const stream = new SyncClient((requests, options) => client.sync(requests, options), {});
      streams.push(stream);
      return stream;
    },
  };
}

/** A bare HTTP/2 connection, taken by the server (its SETTINGS came) when this resolves. */
async function bareConnection(address: string): Promise<ClientHttp2Session> {
  const session = connect(`http://${address}`);
  session.on("error", () => {});
  extras.push(() => session.destroy());
  await once(session, "remoteSettings");
  return session;
}

/**
 * A gauge's value from now on, followed through its `inc`/`dec` calls, so a
 * test can wait for a change on the server side as an event.
 */
function follow(gauge: Gauge, conditions: Conditions): { value: number } {
  const followed = { value: 0 };
  const inc = gauge.inc.bind(gauge);
  const dec = gauge.dec.bind(gauge);
  // The server calls both without labels: inc() or inc(n).
  gauge.inc = ((value?: number) => {
    inc(value);
    followed.value += value ?? 1;
    conditions.notify();
  }) as Gauge["inc"];
  gauge.dec = ((value?: number) => {
    dec(value);
    followed.value -= value ?? 1;
    conditions.notify();
  }) as Gauge["dec"];
  return followed;
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await server.running.server.metrics.registry.getSingleMetric(name)?.get();
  const found = metric?.values.find((v) =>
    Object.entries(labels).every(([key, value]) => v.labels[key] === value),
  );
  return found?.value ?? 0;
}

/** A TCP relay to the server that can go silent without closing anything: a dead peer. */
async function relayTo(address: string) {
  const [host = "", port = ""] = address.split(":");
  const sockets = new Set<Socket>();
  let silent = false;
  const toServer: Socket[] = [];
  const relay = createServer((inbound) => {
    const outbound = connectTcp(Number(port), host);
    toServer.push(outbound);
    sockets.add(inbound).add(outbound);
    inbound.on("data", (chunk) => silent || outbound.write(chunk));
    outbound.on("data", (chunk) => silent || inbound.write(chunk));
    for (const socket of [inbound, outbound])
      socket.on("error", () => {}).on("close", () => sockets.delete(socket));
  }).listen(0, "127.0.0.1");
  await once(relay, "listening");
  extras.push(() => {
    for (const socket of sockets) socket.destroy();
    relay.close();
  });
  return {
    address: `127.0.0.1:${(relay.address() as { port: number }).port}`,
    /** The relay's connections to the server, in the order clients opened them. */
    toServer,
    goSilent() {
      silent = true;
    },
  };
}

describe("maxConnections", () => {
  test("when every connection is admitted, Sync on a new one gets RESOURCE_EXHAUSTED naming the key; health is still answered; open streams carry on", async () => {
    server = await startServer({ maxConnections: 2 });
    const address = server.running.grpcAddress;
    const conditions = new Conditions();
    const open = follow(server.running.server.metrics.connections, conditions);
    const first = server.connect();
    const secondConnection = ownConnection(address);
    const second = secondConnection.sync();
    for (const client of [first, second]) {
      client.send(stateRequest(seed0));
      await client.until(() => client.responses.length === 1);
    }
    expect(open.value).toBe(2);

    const refused = ownConnection(address).sync();
    refused.send(stateRequest(seed0));
    const error = await refused.closed();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.message).toContain("maxConnections");
    // A full server is alive: a gRPC probe on a connection of its own is answered.
    const probe = createClient(Health, ownConnection(address).transport);
    expect((await probe.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect(
      await metricValue("fair_state_connections_refused_total", { reason: "max_connections" }),
    ).toBe(2);
    expect(await metricValue("fair_state_connections")).toBe(2);
    expect(await metricValue("fair_state_connections_closed_total", { reason: "evicted" })).toBe(0);
    expect(await metricValue("fair_state_streams_refused_total")).toBe(0);

    // The stream already open never noticed.
    first.send(stateRequest(seed0));
    await first.until(() => first.responses.length === 2);
    // One connection closing makes room for the next.
    secondConnection.close();
    await conditions.until(() => open.value === 1);
    const later = ownConnection(address).sync();
    later.send(stateRequest(seed0));
    await later.until(() => later.responses.length === 1);
    expect(later.error).toBeUndefined();
  });

  test("at the limit, a new client makes room by closing the oldest connection never admitted; the client and a health probe are served", async () => {
    server = await startServer({ maxConnections: 3 });
    const address = server.running.grpcAddress;
    const conditions = new Conditions();
    const open = follow(server.running.server.metrics.connections, conditions);
    const admitted = server.connect();
    admitted.send(stateRequest(seed0));
    await admitted.until(() => admitted.responses.length === 1);
    // Two connections that spoke HTTP/2 and never opened a stream.
    const oldest = await bareConnection(address);
    const younger = await bareConnection(address);
    expect(open.value).toBe(3);
    const oldestGone = once(oldest, "close");
    const youngerGone = once(younger, "close");

    const newcomer = ownConnection(address).sync();
    newcomer.send(stateRequest(seed0));
    await newcomer.until(() => newcomer.responses.length === 1);
    await oldestGone;
    expect(younger.closed || younger.destroyed).toBe(false);
    // A kubelet probe on a server full again: the next unadmitted one makes room.
    const probe = createClient(Health, ownConnection(address).transport);
    expect((await probe.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    await youngerGone;

    expect(await metricValue("fair_state_connections_closed_total", { reason: "evicted" })).toBe(2);
    expect(await metricValue("fair_state_connections_refused_total")).toBe(0);
    expect(await metricValue("fair_state_connections")).toBe(3);
    // The admitted client was never in danger.
    admitted.send(stateRequest(seed0));
    await admitted.until(() => admitted.responses.length === 2);
  });

  test("a connection whose Sync streams are refused for their token is never admitted: it makes room for a client with one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fair-limits-"));
    extras.push(() => rmSync(dir, { recursive: true, force: true }));
    const tokens = join(dir, "tokens");
    const token = "tok-limits-0123456789";
    writeFileSync(tokens, `${token}\n`);
    server = await startServer({ maxConnections: 2, authTokensFile: tokens });
    const withToken = { authorization: `Bearer ${token}` };
    const member = server.open(grpcProtobuf, withToken);
    member.send(stateRequest(seed0));
    await member.until(() => member.responses.length === 1);
    const intruder = server.open(grpcProtobuf);
    intruder.send(stateRequest(seed0));
    expect((await intruder.closed())?.code).toBe(Code.Unauthenticated);
    expect(await metricValue("fair_state_connections")).toBe(2);

    const newcomer = server.open(grpcProtobuf, withToken);
    newcomer.send(stateRequest(seed0));
    await newcomer.until(() => newcomer.responses.length === 1);
    expect(await metricValue("fair_state_connections_closed_total", { reason: "evicted" })).toBe(1);
    expect(await metricValue("fair_state_connections_refused_total")).toBe(0);
  });
});

describe("connectionTimeoutMs", () => {
  test("a connection that opens no stream within connectionTimeoutMs gets GOAWAY and is closed; ones that opened a stream are kept", async () => {
    server = await startServer({ connectionTimeoutMs: 20_000 });
    const address = server.running.grpcAddress;
    const busy = server.connect();
    busy.send(stateRequest(seed0));
    await busy.until(() => busy.responses.length === 1);
    // A stream that has ended still counts: idleTimeoutMs is for those.
    const used = await bareConnection(address);
    const stream = rawSyncStream(used);
    stream.end(grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))));
    stream.resume(); // read the reply, so the stream can close
    await new Promise((resolve) => stream.once("close", resolve));
    const silent = await bareConnection(address);
    const goaway = once(silent, "goaway");
    const closed = once(silent, "close");

    server.time.tick(19_999);
    expect(
      await metricValue("fair_state_connections_closed_total", { reason: "connection_timeout" }),
    ).toBe(0);
    server.time.tick(1);
    await goaway;
    await closed;
    expect(
      await metricValue("fair_state_connections_closed_total", { reason: "connection_timeout" }),
    ).toBe(1);
    expect(used.closed || used.destroyed).toBe(false);
    busy.send(stateRequest(seed0));
    await busy.until(() => busy.responses.length === 2);
  });
});

describe("keepalive", () => {
  test("a peer that stops answering PINGs has its connection closed and its stream ended; the others carry on", async () => {
    // PINGs run on real timers inside the server: short ones keep the test quick.
    server = await startServer({ keepaliveIntervalMs: 20, keepaliveTimeoutMs: 100 });
    const conditions = new Conditions();
    const streams = follow(server.running.server.metrics.connectedClients, conditions);
    const relay = await relayTo(server.running.grpcAddress);
    const doomed = ownConnection(relay.address).sync();
    doomed.send(stateRequest(seed0));
    await doomed.until(() => doomed.responses.length === 1);
    const calm = server.connect();
    calm.send(stateRequest(seed0));
    await calm.until(() => calm.responses.length === 1);
    expect(streams.value).toBe(2);

    relay.goSilent();
    const [toServer] = relay.toServer;
    if (toServer === undefined) throw new Error("the relay has no connection to the server");
    await once(toServer, "close");
    await conditions.until(() => streams.value === 1);
    expect(
      await metricValue("fair_state_connections_closed_total", { reason: "keepalive_timeout" }),
    ).toBe(1);
    // The calm client answers the PINGs it gets: still connected.
    calm.send(stateRequest(seed0));
    await calm.until(() => calm.responses.length === 2);
  });

  test("a quiet peer that answers is PINGed every interval and kept", async () => {
    server = await startServer({ keepaliveIntervalMs: 10, keepaliveTimeoutMs: 1_000 });
    const session = await bareConnection(server.running.grpcAddress);
    let pings = 0;
    const conditions = new Conditions();
    session.on("ping", () => {
      pings++;
      conditions.notify();
    });
    await conditions.until(() => pings >= 3);
    expect(session.closed || session.destroyed).toBe(false);
    expect(await metricValue("fair_state_connections_closed_total")).toBe(0);
  });
});

describe("idleTimeoutMs", () => {
  test("a connection without a stream for idleTimeoutMs gets GOAWAY; one with an open stream does not", async () => {
    server = await startServer({ idleTimeoutMs: 50, keepaliveIntervalMs: 0 });
    const busy = server.connect();
    busy.send(stateRequest(seed0));
    await busy.until(() => busy.responses.length === 1);
    // Opened after the busy one: by the time it is idle long enough, so is the busy one.
    const quiet = await bareConnection(server.running.grpcAddress);
    const closed = once(quiet, "close");
    await once(quiet, "goaway");
    await closed;
    expect(await metricValue("fair_state_connections_closed_total", { reason: "idle" })).toBe(1);
    busy.send(stateRequest(seed0));
    await busy.until(() => busy.responses.length === 2);
  });

  test("a connection is idle only once its last stream has ended", async () => {
    server = await startServer({ idleTimeoutMs: 50, keepaliveIntervalMs: 0 });
    const conditions = new Conditions();
    const streams = follow(server.running.server.metrics.connectedClients, conditions);
    const session = await bareConnection(server.running.grpcAddress);
    let goaway = false;
    session.once("goaway", () => {
      goaway = true;
    });
    const stream = rawSyncStream(session);
    await conditions.until(() => streams.value === 1);
    // A connection opened later going idle shows idleTimeoutMs has passed.
    const later = await bareConnection(server.running.grpcAddress);
    await once(later, "goaway");
    expect(goaway).toBe(false);
    stream.close();
    await once(session, "goaway");
    expect(await metricValue("fair_state_connections_closed_total", { reason: "idle" })).toBe(2);
  });
});

describe("maxSeedsPerNamespace and maxBucketsPerSeed", () => {
  test("an update adding a seed past maxSeedsPerNamespace ends its stream with RESOURCE_EXHAUSTED naming the key; nothing of it is applied", async () => {
    server = await startServer({ maxSeedsPerNamespace: 2 });
    const writer = server.connect("checkout");
    const reader = server.connect("checkout");
    const next = (windows: number) => seed0 + BigInt(windows * windowMs);
    writer.send(
      deltaUpdate(next(0), [[0, 0, 0.1, t0]]),
      deltaUpdate(next(1), [[0, 0, 0.1, t0]]),
      deltaUpdate(next(2), [
        [0, 0, 0.1, t0],
        [0, 1, 0.2, t0],
      ]),
    );
    const error = await writer.closed();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.message).toMatch(/^.*delta_update\.seed: .*maxSeedsPerNamespace \(2\)/);
    // Another namespace has room of its own; the reader's stream carries on and sees nothing of it.
    const other = server.connect("other");
    other.send(deltaUpdate(next(2), [[0, 0, 0.1, t0]]));
    await other.until(() => other.responses.length === 1);
    reader.send(stateRequest(next(2)));
    await reader.until(() => reader.fullStateReplies(next(2)).length === 1);
    expect(reader.view(next(2))).toEqual([]);
    expect(
      await metricValue("fair_state_store_limit_refusals_total", {
        limit: "max_seeds_per_namespace",
      }),
    ).toBe(1);
    expect(
      await metricValue("fair_state_delta_updates_rejected_total", { code: "resource_exhausted" }),
    ).toBe(1);
    expect(await metricValue("fair_state_deltas_dropped_total", { reason: "rejected" })).toBe(2);
  });

  test("an update leaving its seed with more than maxBucketsPerSeed buckets ends its stream with RESOURCE_EXHAUSTED naming the key; nothing of it is applied", async () => {
    server = await startServer({ maxBucketsPerSeed: 2 });
    const writer = server.connect();
    const reader = server.connect();
    writer.send(deltaUpdate(seed0, [[0, 0, 0.1, t0]]));
    await reader.until(() => reader.view(seed0).length === 1);
    writer.send(
      deltaUpdate(seed0, [
        [0, 0, 0.3, t0],
        [0, 1, 0.1, t0],
        [0, 2, 0.1, t0],
      ]),
    );
    const error = await writer.closed();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.message).toContain("delta_update.seed: ");
    expect(error?.message).toContain("would hold 3 buckets, more than maxBucketsPerSeed (2)");
    reader.send(stateRequest(seed0));
    await reader.until(() => reader.fullStateReplies(seed0).length === 1);
    expect(reader.fullStateReplies(seed0)[0]?.buckets.map((b) => b.prob)).toEqual([0.1]);
    expect(
      await metricValue("fair_state_store_limit_refusals_total", { limit: "max_buckets_per_seed" }),
    ).toBe(1);
  });
});

describe("configuration", () => {
  test("every limit has its environment name and flag", () => {
    const { config } = loadConfig({
      argv: [
        "--max-connections",
        "50",
        "--idle-timeout-ms",
        "5m",
        "--max-buckets-per-seed",
        "1000",
      ],
      env: {
        FAIR_STATE_KEEPALIVE_INTERVAL_MS: "1m",
        FAIR_STATE_KEEPALIVE_TIMEOUT_MS: "5s",
        FAIR_STATE_MAX_SEEDS_PER_NAMESPACE: "8",
      },
    });
    expect(config).toMatchObject({
      maxConnections: 50,
      keepaliveIntervalMs: 60_000,
      keepaliveTimeoutMs: 5_000,
      idleTimeoutMs: 300_000,
      maxSeedsPerNamespace: 8,
      maxBucketsPerSeed: 1_000,
    });
  });

  test("timers under a second (other than 0 for off) and limits under 1 are refused", () => {
    let caught: unknown;
    try {
      loadConfig({
        argv: ["--keepalive-interval-ms", "500ms", "--max-connections", "0"],
        env: { FAIR_STATE_IDLE_TIMEOUT_MS: "10ms", FAIR_STATE_MAX_SEEDS_PER_NAMESPACE: "0" },
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message.split("\n").sort()).toEqual([
      "env FAIR_STATE_IDLE_TIMEOUT_MS: idleTimeoutMs: must be 0 (never) or at least 1000 ms",
      expect.stringMatching(/^env FAIR_STATE_MAX_SEEDS_PER_NAMESPACE: maxSeedsPerNamespace: /),
      "flag --keepalive-interval-ms: keepaliveIntervalMs: must be 0 (no PINGs) or at least 1000 ms",
      expect.stringMatching(/^flag --max-connections: maxConnections: /),
    ]);
    expect(
      loadConfig({ argv: ["--keepalive-interval-ms", "0ms"], env: {} }).config.keepaliveIntervalMs,
    ).toBe(0);
  });
});
