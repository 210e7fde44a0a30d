// Two server processes on one Redis (store: redis), and on a Redis Cluster
// (redisMode: cluster, 16 slot groups), with clients spread over them,
// against a single in-memory server fed the same deltas. Then one replica is
// killed mid-run: its clients move to the other and converge, and nothing
// acknowledged is lost.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import { loadConfig, type RunningStateServer, serveStateServer } from "@fair/state-server";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { deleteClusterKeys } from "@fair/testing/redis-cluster";
import { afterEach, describe, expect, inject, test } from "vitest";
import { type DeltaTuple, ReplicaClient } from "./replica-client.js";

const url = inject("redisUrl");
const clusterUrl = inject("redisClusterUrl");

/** Where the replicas keep the view: one Redis, or a Redis Cluster. */
interface Backend {
  readonly mode: "standalone" | "cluster";
  readonly url: string;
  readonly cleanup: (keyPrefix: string) => Promise<unknown>;
}
const standalone: Backend = {
  mode: "standalone",
  url,
  cleanup: (keyPrefix) => deleteKeys(url, keyPrefix),
};
const cluster: Backend = {
  mode: "cluster",
  url: clusterUrl,
  cleanup: (keyPrefix) => deleteClusterKeys(clusterUrl, keyPrefix),
};
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const main = join(repo, "apps/state-server/src/main.ts");
const windowMs = 300_000;

const children: ChildProcess[] = [];
const clients: ReplicaClient[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Starts a replica process on Redis; resolves with its gRPC address once it reports SERVING. */
async function startReplica(
  keyPrefix: string,
  backend: Backend = standalone,
): Promise<{ child: ChildProcess; address: string }> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("FAIR_STATE_")),
  );
  const child = spawn(process.execPath, ["--import", "tsx", "--conditions=development", main], {
    cwd: repo,
    env: {
      ...inherited,
      FAIR_STATE_STORE: "redis",
      FAIR_STATE_REDIS_MODE: backend.mode,
      FAIR_STATE_REDIS_URL: backend.url,
      FAIR_STATE_REDIS_KEY_PREFIX: keyPrefix,
      FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_METRICS_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_SHUTDOWN_GRACE_PERIOD_MS: "1s",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let address = "";
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    const entry = JSON.parse(line) as { msg?: string; grpcAddress?: string };
    if (entry.msg === "fair-state-server started") {
      address = entry.grpcAddress ?? "";
      break;
    }
  }
  child.stdout?.resume();
  expect(address).not.toBe("");
  // Ready when the readiness probe says so: Redis connected and subscribed.
  const sessions = new Http2SessionManager(`http://${address}`);
  const health = createClient(
    Health,
    createGrpcTransport({ baseUrl: `http://${address}`, sessionManager: sessions }),
  );
  for await (const { status } of health.watch({ service: "fair.state.v1.StateService" })) {
    if (status === ServingStatus.SERVING) break;
  }
  sessions.abort();
  return { child, address };
}

function client(addresses: string[], seed: bigint): ReplicaClient {
  const c = new ReplicaClient(addresses, seed);
  clients.push(c);
  return c;
}

/** The view as plain numbers, for comparing within a tolerance. */
function closeTo(
  view: ReplicaClient["view"],
  expected: ReadonlyMap<string, { prob: number; lastUpdateTimeMs: number }>,
): boolean {
  const held = [...view].filter(([, b]) => b.prob > 0);
  if (held.length !== expected.size) return false;
  return held.every(([key, b]) => {
    const want = expected.get(key);
    return (
      want !== undefined &&
      want.lastUpdateTimeMs === b.lastUpdateTimeMs &&
      Math.abs(want.prob - b.prob) < 1e-9
    );
  });
}

describe.skipIf(url === "")("replicas on Redis (two processes)", () => {
  test.each([
    ["one Redis", standalone],
    ["a Redis Cluster", cluster],
  ] as const)(
    "on %s: deltas sent to either replica reach every client, and all converge to what one in-memory server computes",
    async (_, backend) => {
      if (backend.url === "") throw new Error("no Redis Cluster: run `pnpm redis:cluster start`");
      const keyPrefix = uniqueKeyPrefix("replicas");
      cleanups.push(() => backend.cleanup(keyPrefix));
      const [one, two] = await Promise.all([
        startReplica(keyPrefix, backend),
        startReplica(keyPrefix, backend),
      ]);
      const reference: RunningStateServer = await serveStateServer({
        config: {
          ...loadConfig({ argv: [], env: {} }).config,
          grpcListenAddress: "127.0.0.1:0",
          metricsListenAddress: "127.0.0.1:0",
        },
      });
      cleanups.push(() => reference.shutdown(500));

      const now = Date.now();
      const seed = BigInt(Math.floor(now / windowMs) * windowMs);
      // Three clients spread over the two replicas; one on the reference server.
      const spread = [
        client([one.address], seed),
        client([two.address], seed),
        client([one.address], seed),
      ];
      const single = client([reference.grpcAddress], seed);
      await Promise.all([...spread, single].map((c) => c.until(() => c.fullStates === 1)));

      // Positive adjustments only, so no delta meets a default bucket with a
      // negative amount or a clamp: the result is then independent of the
      // order in which the replicas' deltas interleave in Redis.
      let x = 7;
      const random = () => {
        x = (x * 16_807) % 2_147_483_647;
        return x / 2_147_483_647;
      };
      for (let i = 0; i < 90; i++) {
        const deltas: DeltaTuple[] = [];
        for (let j = 0; j < 4; j++) {
          const ts = now - Math.floor(random() * 5_000);
          deltas.push([
            Math.floor(random() * 3),
            Math.floor(random() * 12),
            0.001 + random() * 0.01,
            ts,
          ]);
        }
        (spread[i % 3] as ReplicaClient).send(deltas);
        single.send(deltas);
      }
      // The reference server applies one stream's updates in order, so its
      // answer to a StateRequest sent after them is the final state.
      single.requestState();
      await single.until(() => single.fullStates === 2);
      expect((await reference.server.store.stats()).appliedDeltas).toBe(360);
      const final = new Map([...single.view].filter(([, b]) => b.prob > 0));

      await Promise.all(spread.map((c) => c.until(() => closeTo(c.view, final))));
      // Every client stayed on its first replica: the view came by fan-out across replicas.
      expect(spread.map((c) => c.streams.length)).toEqual([1, 1, 1]);
    },
  );

  test("a replica killed mid-run: its clients reconnect to the other and converge; nothing acknowledged is lost", async () => {
    const keyPrefix = uniqueKeyPrefix("kill");
    cleanups.push(() => deleteKeys(url, keyPrefix));
    const [one, two] = await Promise.all([startReplica(keyPrefix), startReplica(keyPrefix)]);
    const now = Date.now();
    const seed = BigInt(Math.floor(now / windowMs) * windowMs);
    // Clients 0 and 1 start on the replica that dies, client 2 on the other;
    // each knows both addresses.
    const all = [
      client([one.address, two.address], seed),
      client([one.address, two.address], seed),
      client([two.address, one.address], seed),
    ];
    await Promise.all(all.map((c) => c.until(() => c.fullStates === 1)));

    // Every delta writes a bucket of its own (row = client, col = sequence)
    // with an amount of its own, so a bucket's value says whether — and how
    // many times — its delta was applied. "Acknowledged" means the sender
    // received a broadcast (or full state) showing that bucket.
    const amount = (client: number, k: number) => 0.001 * (1 + ((client * 37 + k) % 97));
    const sent = all.map(() => [] as number[]);
    const send = (i: number, from: number, to: number) => {
      for (let k = from; k < to; k++) {
        (all[i] as ReplicaClient).send([[i, k, amount(i, k), now]]);
        sent[i]?.push(k);
      }
    };
    const acknowledged = (i: number) =>
      (sent[i] ?? []).filter((k) => (all[i] as ReplicaClient).view.has(`${i}:${k}`));

    for (const i of [0, 1, 2]) send(i, 0, 30);
    await Promise.all(all.map((c, i) => c.until(() => acknowledged(i).length === 30)));

    // Mid-run: more deltas are on their way when the replica dies.
    for (const i of [0, 1, 2]) send(i, 30, 60);
    one.child.kill("SIGKILL");
    await once(one.child, "exit");
    // Its clients move to the other replica and ask for full state there.
    await Promise.all(
      [0, 1].map((i) =>
        all[i]?.until(() => all[i]?.streams.at(-1) === two.address && all[i]?.fullStates === 1),
      ),
    );
    for (const i of [0, 1, 2]) send(i, 60, 80);
    await Promise.all(
      all.map((c, i) =>
        c.until(() => [...Array(20).keys()].every((j) => c.view.has(`${i}:${60 + j}`))),
      ),
    );

    // The truth, from a fresh client on the surviving replica.
    const observer = client([two.address], seed);
    await observer.until(() => observer.fullStates === 1);
    const truth = observer.view;
    for (const i of [0, 1, 2]) {
      for (const k of acknowledged(i)) {
        expect(truth.get(`${i}:${k}`)?.prob, `acknowledged ${i}:${k}`).toBe(amount(i, k));
      }
      // Unacknowledged deltas (sent into the dying stream) were applied once or not at all.
      for (const k of sent[i] ?? []) {
        const prob = truth.get(`${i}:${k}`)?.prob;
        expect([undefined, amount(i, k)]).toContain(prob);
      }
    }
    // Every client converges on that state.
    const expected = new Map([...truth].filter(([, b]) => b.prob > 0));
    await Promise.all(all.map((c) => c.until(() => closeTo(c.view, expected))));
    expect(all.map((c) => c.streams.length)).toEqual([2, 2, 1]);
  });
});
