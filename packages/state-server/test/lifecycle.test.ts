// Health, metrics and graceful shutdown, seen from outside the process.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import { afterEach, describe, expect, test } from "vitest";
import { deltaUpdate, seed0, startServer, stateRequest, type TestServer, t0 } from "./harness.js";
import { MapStore } from "./map-store.js";

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

async function get(path: string) {
  const response = await fetch(`http://${server.running.metricsAddress}${path}`);
  return { status: response.status, text: await response.text() };
}

/** Every `fair_state_*` sample in a Prometheus text scrape, by its full series name. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(fair_state_\S+)\s+(\S+)$/.exec(line);
    if (match?.[1] && match[2]) out.set(match[1], Number(match[2]));
  }
  return out;
}

describe("health", () => {
  test("grpc.health.v1 Check reports SERVING for the server and the Sync service, NOT_FOUND otherwise", async () => {
    server = await startServer();
    const health = createClient(Health, server.transport);
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "fair.state.v1.StateService" })).status).toBe(
      ServingStatus.SERVING,
    );
    const error = await health
      .check({ service: "nope" })
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toMatchObject({ code: Code.NotFound });
  });

  test("/healthz is 200, /readyz is 200 while serving and 503 once shutdown begins", async () => {
    server = await startServer();
    expect(await get("/healthz")).toEqual({ status: 200, text: "ok\n" });
    expect(await get("/readyz")).toEqual({ status: 200, text: "ready\n" });
    server.running.server.stop(); // the first step of shutdown; the listeners are still up
    expect(await get("/readyz")).toEqual({ status: 503, text: "not serving\n" });
    expect((await get("/nope")).status).toBe(404);
  });

  test("a store that says it cannot serve turns the server NOT_SERVING until it can; streams stay open", async () => {
    let store: MapStore | undefined;
    server = await startServer({}, (_config, time) => {
      store = new MapStore({ now: time.now, timers: time.timers });
      return store;
    });
    const health = createClient(Health, server.transport);
    const stream = server.connect();
    stream.send(stateRequest(seed0));
    await stream.until(() => stream.responses.length === 1);

    store?.setReady(false);
    expect(await get("/readyz")).toEqual({ status: 503, text: "not serving\n" });
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.NOT_SERVING);
    store?.setReady(true);
    expect(await get("/readyz")).toEqual({ status: 200, text: "ready\n" });
    stream.send(stateRequest(seed0));
    await stream.until(() => stream.responses.length === 2);
  });
});

describe("metrics", () => {
  test("/metrics shows every fair_state metric moving after traffic", async () => {
    server = await startServer({ maxDeltasPerMessage: 2 });
    const before = samples((await get("/metrics")).text);
    const a = server.connect();
    const b = server.connect();
    a.send(deltaUpdate(seed0, [[0, 1, 0.5, t0 + 3_600_000]]), stateRequest(seed0));
    await b.until(() => b.responses.length === 1);
    await a.until(() => a.fullStateReplies(seed0).length === 1);
    a.send(deltaUpdate(seed0 - 3_000_000n, [[0, 1, 0.5, t0]])); // too old: dropped
    const bad = server.connect();
    bad.send(
      deltaUpdate(seed0, [
        [0, 1, 0.1, t0],
        [0, 2, 0.1, t0],
        [0, 3, 0.1, t0],
      ]),
    );
    await bad.closed();
    server.time.tick(server.config.seedEvictionTtlMs + 300_000);
    a.send(stateRequest(seed0));
    await a.until(() => a.fullStateReplies(seed0).length === 2);

    const after = samples((await get("/metrics")).text);
    const moved = (name: string) => (after.get(name) ?? 0) > (before.get(name) ?? 0);
    for (const name of [
      "fair_state_connected_clients",
      "fair_state_delta_updates_received_total",
      "fair_state_deltas_received_total",
      "fair_state_deltas_applied_total",
      'fair_state_deltas_dropped_total{reason="too_old"}',
      'fair_state_deltas_dropped_total{reason="rejected"}',
      'fair_state_delta_updates_rejected_total{code="resource_exhausted"}',
      'fair_state_streams_closed_total{code="resource_exhausted"}',
      "fair_state_timestamps_clamped_total",
      "fair_state_seeds_evicted_total",
      "fair_state_buckets_broadcast_total",
      "fair_state_broadcast_batches_total",
      "fair_state_full_state_requests_total",
      "fair_state_full_state_buckets_sent_total",
      "fair_state_aggregation_latency_seconds_count",
    ]) {
      expect(moved(name), `${name}: ${before.get(name)} → ${after.get(name)}`).toBe(true);
    }
    expect(after.get("fair_state_serving")).toBe(1);
    expect(after.get("fair_state_store_buckets")).toBe(0); // its only seed was evicted
  });
});

describe("sweeps", () => {
  test("the server's sweeps over its streams (the stall limit's among them) run only while a stream is open, and none is left once it stops", async () => {
    server = await startServer();
    const { time } = server;
    const idle = time.activeIntervals;
    const first = server.connect();
    const second = server.connect();
    for (const client of [first, second]) {
      client.send(stateRequest(seed0));
      await client.until(() => client.responses.length === 1);
    }
    const open = time.activeIntervals;
    expect(open).toBeGreaterThan(idle);
    first.end();
    second.end();
    await Promise.all([first.closed(), second.closed()]);
    expect(time.activeIntervals).toBe(idle);

    const last = server.connect();
    last.send(stateRequest(seed0));
    await last.until(() => last.responses.length === 1);
    expect(time.activeIntervals).toBe(open);
    await server.running.shutdown();
    expect(time.activeIntervals).toBe(0);
  });
});

describe("graceful shutdown", () => {
  test("health turns NOT_SERVING, every Sync stream ends with UNAVAILABLE, and the listeners close", async () => {
    server = await startServer();
    const health = createClient(Health, server.transport);
    const watched: ServingStatus[] = [];
    const watching = (async () => {
      for await (const response of health.watch({ service: "" })) watched.push(response.status);
    })().catch(() => undefined);
    const clients = [server.connect(), server.connect()];
    for (const client of clients) client.send(stateRequest(seed0));
    await Promise.all(clients.map((c) => c.until(() => c.responses.length === 1)));

    await server.running.shutdown();
    for (const client of clients) {
      const error = await client.closed();
      expect(error?.code, error?.message).toBe(Code.Unavailable);
      expect(error?.message).toContain("shutting down");
    }
    await watching;
    expect(watched).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    await expect(fetch(`http://${server.running.metricsAddress}/healthz`)).rejects.toThrow();
  });
});
