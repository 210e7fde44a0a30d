// Ingest and fan-out of the State Service on Redis, 1 vs 2 replicas (and the
// in-memory server as the baseline), end to end over loopback:
//
//   pnpm --filter @fair/state-store-redis bench [seconds per run, default 5]
//
// Each run starts the server processes (apps/state-server, through tsx),
// SENDERS (4) streams sending DeltaUpdates of 100 deltas as fast as the server
// takes them (a tracker's mix: 30 % +0.05, 70 % −0.01, keys over 3 × 1000
// buckets) and RECEIVERS streams that only listen, spread evenly over the
// replicas. It reports deltas applied per second (ingest), bucket updates
// delivered to the receivers per second (fan-out), and where the time went:
// Redis's own CPU and time per script call (INFO), the servers' CPU.
// Needs Redis at FAIR_BENCH_REDIS_URL (default redis://127.0.0.1:6379); it
// writes under a key prefix of its own and deletes it afterwards.
import { type ChildProcess, spawn } from "node:child_process";
import { once, setMaxListeners } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { StateService, type SyncRequest, SyncRequestSchema } from "@fair/state-proto";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { RedisStore } from "../src/index.js";
import { bytesPerBucket, DELTAS, lcg, scriptMicrosPerCall, trackerMix } from "./workload.js";

const seconds = Number(process.argv[2] ?? 5);
const redisUrl = process.env["FAIR_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const SENDERS = 4;
const RECEIVERS = 8;
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const main = join(repo, "apps/state-server/src/main.ts");
const windowMs = 300_000;

interface Replica {
  child: ChildProcess;
  grpc: string;
  metrics: string;
}

async function startReplica(store: "memory" | "redis", keyPrefix: string): Promise<Replica> {
  const child = spawn(process.execPath, ["--import", "tsx", "--conditions=development", main], {
    cwd: repo,
    env: {
      ...process.env,
      FAIR_STATE_STORE: store,
      FAIR_STATE_REDIS_URL: redisUrl,
      FAIR_STATE_REDIS_KEY_PREFIX: keyPrefix,
      FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_METRICS_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    const entry = JSON.parse(line) as {
      msg?: string;
      grpcAddress?: string;
      metricsAddress?: string;
    };
    if (store === "memory" && entry.msg === "fair-state-server started") {
      child.stdout?.resume();
      return { child, grpc: entry.grpcAddress ?? "", metrics: entry.metricsAddress ?? "" };
    }
    if (entry.msg === "fair-state-server started") {
      Object.assign(child, { addresses: entry });
    }
    // "redis ready: SERVING" before the server named it by the Store contract.
    if (entry.msg === "store ready: SERVING" || entry.msg === "redis ready: SERVING") {
      const started = (child as unknown as { addresses: typeof entry }).addresses;
      child.stdout?.resume();
      return { child, grpc: started.grpcAddress ?? "", metrics: started.metricsAddress ?? "" };
    }
  }
  throw new Error("the server exited before it was ready");
}

async function scrape(replica: Replica): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${replica.metrics}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(\S+)\s+(\S+)$/.exec(line);
    if (match?.[1] && match[2]) out.set(match[1], Number(match[2]));
  }
  return out;
}

async function redisInfo(redis: Redis) {
  const text = `${await redis.info("cpu")}\n${await redis.info("commandstats")}`;
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    cpu: num(/used_cpu_user:([\d.]+)/) + num(/used_cpu_sys:([\d.]+)/),
    scriptCalls: num(/cmdstat_evalsha:calls=(\d+)/),
    scriptUsec: num(/cmdstat_evalsha:calls=\d+,usec=(\d+)/),
  };
}

function deltaUpdate(seed: bigint, now: number, next: () => number): SyncRequest {
  const value = trackerMix(seed, now, next);
  return create(SyncRequestSchema, { request: { case: "deltaUpdate", value } });
}

async function run(label: string, store: "memory" | "redis", count: number) {
  const keyPrefix = uniqueKeyPrefix("bench");
  const replicas = await Promise.all(
    Array.from({ length: count }, () => startReplica(store, keyPrefix)),
  );
  const redis = new Redis(redisUrl);
  const sessions: Http2SessionManager[] = [];
  const clientFor = (i: number) => {
    const baseUrl = `http://${replicas[i % count]?.grpc}`;
    const session = new Http2SessionManager(baseUrl);
    sessions.push(session);
    return createClient(StateService, createGrpcTransport({ baseUrl, sessionManager: session }));
  };
  const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
  const stop = new AbortController();
  setMaxListeners(64, stop.signal);
  let delivered = 0;
  const receivers = Array.from({ length: RECEIVERS }, async (_, i) => {
    const idle = (async function* () {
      yield create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } });
      await new Promise((resolve) => stop.signal.addEventListener("abort", resolve));
    })();
    try {
      for await (const response of clientFor(i).sync(idle, { signal: stop.signal })) {
        if (!response.fullState) delivered += response.buckets.length;
      }
    } catch {
      // Aborted at the end of the run.
    }
  });
  const next = lcg();
  const before = await Promise.all(replicas.map(scrape));
  const redisBefore = await redisInfo(redis);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const senders = Array.from({ length: SENDERS }, async (_, i) => {
    const requests = (async function* () {
      while (performance.now() < deadline) yield deltaUpdate(seed, Date.now(), next);
    })();
    for await (const _ of clientFor(i).sync(requests)) {
      // Broadcasts to the sender are not counted.
    }
  });
  await Promise.all(senders);
  const elapsed = (performance.now() - started) / 1000;
  const after = await Promise.all(replicas.map(scrape));
  const redisAfter = await redisInfo(redis);
  stop.abort();
  await Promise.all(receivers);
  for (const session of sessions) session.abort();

  const sum = (name: string, from: Map<string, number>[], to: Map<string, number>[]) =>
    to.reduce((total, m, i) => total + (m.get(name) ?? 0) - (from[i]?.get(name) ?? 0), 0);
  const applied = sum("fair_state_deltas_applied_total", before, after);
  const serverCpu = sum("process_cpu_seconds_total", before, after);
  const calls = redisAfter.scriptCalls - redisBefore.scriptCalls;
  const result = {
    label,
    ingest: Math.round(applied / elapsed),
    fanOut: Math.round(delivered / elapsed),
    serverCpu: `${((serverCpu / elapsed) * 100).toFixed(0)}%`,
    redisCpu:
      store === "redis"
        ? `${(((redisAfter.cpu - redisBefore.cpu) / elapsed) * 100).toFixed(0)}%`
        : "-",
    usPerScript:
      calls > 0 ? ((redisAfter.scriptUsec - redisBefore.scriptUsec) / calls).toFixed(0) : "-",
  };
  for (const replica of replicas) {
    const exited = once(replica.child, "exit");
    replica.child.kill("SIGTERM");
    await exited;
  }
  await deleteKeys(redisUrl, keyPrefix);
  redis.disconnect();
  return result;
}

/** The store alone, no server: round trip, throughput with 16 updates in flight, Redis time per script, bytes per bucket. */
async function storeOnly() {
  const keyPrefix = uniqueKeyPrefix("bench-store");
  const store = new RedisStore({ url: redisUrl, keyPrefix });
  store.start();
  await store.whenReady();
  const raw = new Redis(redisUrl);
  const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
  const next = lcg();
  const update = () => trackerMix(seed, Date.now(), next);
  const scriptUs = () => scriptMicrosPerCall(raw);
  for (let i = 0; i < 200; i++) await store.applyUpdate(update());
  await raw.config("RESETSTAT");
  let started = performance.now();
  for (let i = 0; i < 1000; i++) await store.applyUpdate(update());
  const sequentialMs = (performance.now() - started) / 1000;
  const sequentialScriptUs = await scriptUs();
  started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 125; i++) await store.applyUpdate(update());
    }),
  );
  const parallel = (1000 * DELTAS) / ((performance.now() - started) / 1000);
  const bytes = await bytesPerBucket(raw, keyPrefix, seed, 0);
  raw.disconnect();
  await store.stop();
  await deleteKeys(redisUrl, keyPrefix);
  console.log(
    `store only (RedisStore.applyUpdate, ${DELTAS} deltas, 3 × 1000 keys): ` +
      `${sequentialMs.toFixed(2)} ms per update one at a time (Redis: ${sequentialScriptUs.toFixed(0)} µs per script); ` +
      `${Math.round(parallel)} deltas/s with 16 in flight; ${bytes.toFixed(0)} bytes per bucket in Redis`,
  );
}

await storeOnly();
const results = [];
results.push(await run("memory, 1 process", "memory", 1));
results.push(await run("redis, 1 replica", "redis", 1));
results.push(await run("redis, 2 replicas", "redis", 2));
console.log(
  `${SENDERS} senders × ${DELTAS} deltas/update, ${RECEIVERS} receivers, ${seconds} s per run, node ${process.version}`,
);
console.table(results);
