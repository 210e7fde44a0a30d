// Replicas on Redis, in one process: two servers on separate listeners share
// one Redis (store: redis); what a client sends to either reaches clients of
// both. A private redis-server is stopped and started again under them.
import { Code, createClient } from "@connectrpc/connect";
import {
  EPOCH_HEADER,
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@fair/state-proto";
import { Conditions } from "@fair/testing";
import {
  deleteKeys,
  type PrivateRedis,
  startPrivateRedis,
  uniqueKeyPrefix,
} from "@fair/testing/redis";
import { afterEach, describe, expect, inject, test } from "vitest";
import {
  deltaUpdate,
  type SyncClient,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

const url = inject("redisUrl");
const servers: TestServer[] = [];
const prefixes: string[] = [];
let privateRedis: PrivateRedis | undefined;

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await privateRedis?.stop();
  privateRedis = undefined;
  for (const prefix of prefixes.splice(0)) await deleteKeys(url, prefix);
});

async function replicas(count: number, redisUrl = url): Promise<TestServer[]> {
  const redisKeyPrefix = uniqueKeyPrefix("server");
  if (redisUrl === url) prefixes.push(redisKeyPrefix);
  for (let i = 0; i < count; i++) {
    const server = await startServer({ store: "redis", redisUrl, redisKeyPrefix });
    servers.push(server);
  }
  return servers.slice(-count);
}

/** Health as the gRPC readiness probe sees it, as a stream of changes. */
function watchHealth(server: TestServer) {
  const seen: ServingStatus[] = [];
  const conditions = new Conditions();
  const abort = new AbortController();
  const health = createClient(Health, server.transport);
  void (async () => {
    for await (const { status } of health.watch(
      { service: "fair.state.v1.StateService" },
      { signal: abort.signal },
    )) {
      seen.push(status);
      conditions.notify();
    }
  })().catch(() => undefined);
  return {
    seen,
    stop: () => abort.abort(),
    /** Resolves when the latest status is `status`. */
    until: (status: ServingStatus) => conditions.until(() => seen.at(-1) === status),
  };
}

async function serving(server: TestServer): Promise<void> {
  const watch = watchHealth(server);
  await watch.until(ServingStatus.SERVING);
  watch.stop();
}

function sees(client: SyncClient, row: number, col: number, prob: number) {
  return client.until(
    () => client.view(seed0).some((b) => b.rowId === row && b.colId === col && b.prob === prob),
    `prob ${prob} at (${row}, ${col})`,
  );
}

describe.skipIf(url === "")("replicas on Redis (in process)", () => {
  test("a delta sent to either replica reaches the clients of both, the sender's included", async () => {
    const [one, two] = (await replicas(2)) as [TestServer, TestServer];
    await Promise.all([serving(one), serving(two)]);
    const a = one.connect();
    const b = two.connect();
    const c = two.connect();
    for (const client of [a, b, c]) client.send(stateRequest(seed0));
    await Promise.all([a, b, c].map((x) => x.until(() => x.fullStateReplies(seed0).length === 1)));

    a.send(deltaUpdate(seed0, [[0, 5, 0.25, t0]]));
    await Promise.all([a, b, c].map((x) => sees(x, 0, 5, 0.25)));
    b.send(deltaUpdate(seed0, [[0, 5, 0.5, t0]]));
    await Promise.all([a, b, c].map((x) => sees(x, 0, 5, 0.75)));

    // A client that connects later gets the shared view from either replica.
    const late = one.connect();
    late.send(stateRequest(seed0));
    await late.until(() => late.fullStateReplies(seed0).length === 1);
    expect(late.view(seed0)).toEqual([{ rowId: 0, colId: 5, prob: 0.75, lastUpdateTimeMs: t0 }]);

    const metrics = await one.running.server.metrics.registry.metrics();
    expect(metrics).toMatch(/fair_state_relay_messages_received_total [1-9]/);
    expect(metrics).toMatch(
      /fair_state_redis_operation_duration_seconds_count\{operation="apply"\} [1-9]/,
    );
    expect(metrics).toMatch(/fair_state_store_buckets 1\b/);
  });

  test("Redis stopped mid-run: NOT_SERVING, listening streams stay open, an update fails with UNAVAILABLE; Redis back without its data: SERVING again in a new epoch, every stream told to reconnect, no restart", async () => {
    privateRedis = await startPrivateRedis();
    const [one, two] = (await replicas(2, privateRedis.url)) as [TestServer, TestServer];
    const health = [watchHealth(one), watchHealth(two)];
    await Promise.all(health.map((h) => h.until(ServingStatus.SERVING)));
    const a = one.connect();
    const b = two.connect();
    a.send(deltaUpdate(seed0, [[1, 1, 0.5, t0]]));
    await Promise.all([sees(a, 1, 1, 0.5), sees(b, 1, 1, 0.5)]);
    // Both replicas announce the one epoch their shared Redis holds.
    const before = a.headers?.get(EPOCH_HEADER);
    expect(before).toMatch(/\S/);
    expect(b.headers?.get(EPOCH_HEADER)).toBe(before);

    await privateRedis.stop();
    await Promise.all(health.map((h) => h.until(ServingStatus.NOT_SERVING)));
    const ready = await fetch(`http://${one.running.metricsAddress}/readyz`);
    expect(ready.status).toBe(503);
    // A stream that only listens stays open through the outage.
    const sender = two.connect();
    sender.send(deltaUpdate(seed0, [[1, 2, 0.5, t0]]));
    const error = await sender.closed();
    expect(error?.code, error?.message).toBe(Code.Unavailable);
    expect(error?.message).toContain("shared store is unavailable");
    const full = one.connect();
    full.send(stateRequest(seed0));
    expect((await full.closed())?.code).toBe(Code.Unavailable);
    expect(a.ended || b.ended).toBe(false);

    // The private Redis keeps nothing on disk: it comes back empty, a new
    // epoch, and every stream is ended so its client reconnects and offers
    // its view back.
    await privateRedis.start();
    await Promise.all(health.map((h) => h.until(ServingStatus.SERVING)));
    expect((await fetch(`http://${one.running.metricsAddress}/readyz`)).status).toBe(200);
    for (const listener of [a, b]) {
      const ended = await listener.closed();
      expect(ended?.code).toBe(Code.Unavailable);
      expect(ended?.rawMessage).toBe("state epoch changed; reconnect");
    }
    const a2 = one.connect();
    const b2 = two.connect();
    for (const client of [a2, b2]) client.send(stateRequest(seed0));
    await Promise.all([a2, b2].map((x) => x.until(() => x.fullStateReplies(seed0).length === 1)));
    const after = a2.headers?.get(EPOCH_HEADER);
    expect(after).toMatch(/\S/);
    expect(after).not.toBe(before);
    expect(b2.headers?.get(EPOCH_HEADER)).toBe(after);
    b2.send(deltaUpdate(seed0, [[1, 3, 0.125, t0]]));
    await Promise.all([sees(a2, 1, 3, 0.125), sees(b2, 1, 3, 0.125)]);
    for (const h of health) h.stop();

    const metrics = await two.running.server.metrics.registry.metrics();
    expect(metrics).toMatch(/fair_state_store_unavailable_total\{operation="apply"\} 1/);
    expect(metrics).toMatch(/fair_state_redis_errors_total\{operation="apply"\} 1/);
    expect(metrics).toMatch(/fair_state_redis_restarts_total [1-9]/);
    expect(metrics).toMatch(/fair_state_redis_epoch_changes_total [1-9]/);
    // An outage is not the client's fault: nothing was counted as rejected.
    expect(metrics).not.toMatch(/fair_state_delta_updates_rejected_total\{/);
  });
});
