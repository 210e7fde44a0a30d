// Redis for tests: a key prefix of their own, cleanup by prefix (never
// FLUSHALL: the server is shared), and a private redis-server on a free port
// for tests that stop and restart Redis.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";

declare module "vitest" {
  export interface ProvidedContext {
    /**
     * The Redis the tests may use, each under a key prefix of its own; ""
     * when none answers (the Redis tests then skip). Set by the root
     * vitest config's global setup (scripts/redis-setup.ts).
     */
    redisUrl: string;
    /**
     * The Redis Cluster the tests may use, as comma-separated seed URLs
     * (`redis://127.0.0.1:7100,redis://127.0.0.1:7101,…`, from
     * FAIR_TEST_REDIS_CLUSTER_URL); "" when none answers `cluster_state:ok`
     * (the cluster tests then skip). `pnpm redis:cluster start` runs one.
     */
    redisClusterUrl: string;
  }
}

/** A key prefix no other test run uses: `fair-test:<pid>:<random>:`. */
export function uniqueKeyPrefix(label = "t"): string {
  return `fair-test:${label}:${process.pid}:${randomBytes(4).toString("hex")}:`;
}

/**
 * Deletes every key under `prefix` (SCAN + UNLINK, a bounded number of
 * rounds), so a test leaves the shared Redis as it found it.
 */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  if (!prefix.startsWith("fair-test:")) throw new Error(`refusing to delete keys of ${prefix}`);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = "0";
    for (let round = 0; round < 10_000; round++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A free TCP port on 127.0.0.1, as the OS hands it out. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/** A redis-server of the test's own, which it may stop and start again. */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stops the server (SIGKILL: as abrupt as a crash) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty (no persistence), and waits until it accepts connections. */
  start(): Promise<void>;
}

/**
 * Starts a redis-server on a free port, in the foreground (so the test owns
 * the process), with nothing saved to disk. Resolves once it logs that it
 * accepts connections. `stop()` it when done.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    if (child) return;
    const process_ = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = process_;
    const exited = once(process_, "exit");
    const lines = createInterface({ input: process_.stdout as NodeJS.ReadableStream });
    const ready = (async () => {
      for await (const line of lines) if (line.includes("Ready to accept connections")) return;
      throw new Error(`redis-server on port ${port} exited before it was ready`);
    })();
    try {
      await Promise.race([
        ready,
        exited.then(() => {
          throw new Error(`redis-server on port ${port} exited before it was ready`);
        }),
      ]);
    } catch (error) {
      child = undefined;
      throw error;
    }
    // Keep draining its output so it never blocks on a full pipe.
    process_.stdout?.resume();
    process_.stderr?.resume();
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    async stop() {
      const process_ = child;
      if (!process_) return;
      child = undefined;
      if (process_.exitCode === null && process_.signalCode === null) {
        const exited = once(process_, "exit");
        process_.kill("SIGKILL");
        await exited;
      }
    },
    start,
  };
}
