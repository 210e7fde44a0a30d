// Vitest global setup for the projects whose tests need Redis: asks Redis
// once whether it answers and hands the URL to the tests (`inject("redisUrl")`,
// "" when it does not). Without Redis the Redis tests skip, and one line says
// so; under CI (CI=true) a missing Redis fails the run instead, so the Redis
// tests never skip silently there (.ci/run starts Redis first). The same goes
// for the Redis Cluster (`inject("redisClusterUrl")`: comma-separated seed
// URLs; `pnpm redis:cluster start` runs one, .ci/run does too).
import { connect } from "node:net";
// Imported so the ProvidedContext augmentation below resolves "vitest".
import type {} from "vitest";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Redis the tests may use (a key prefix of their own each), or "" when none answers. */
    redisUrl: string;
    /**
     * The Redis Cluster the tests may use, as comma-separated seed URLs
     * (`redis://127.0.0.1:7100,redis://127.0.0.1:7101,…`), or "" when none
     * answers `cluster_state:ok`.
     */
    redisClusterUrl: string;
  }
}

const url = process.env["FAIR_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const clusterUrl =
  process.env["FAIR_TEST_REDIS_CLUSTER_URL"] ??
  "redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102";
const state = globalThis as {
  fairRedisAnswer?: Promise<boolean>;
  fairRedisClusterAnswer?: Promise<boolean>;
};

/**
 * One command over a raw socket (no client library needed), bounded by a
 * timeout: its reply as text (a simple or bulk string, or `-ERR …`), or
 * undefined when nothing answers in time.
 */
function ask(target: URL, command: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.hostname, port: Number(target.port || 6379) });
    let received = Buffer.alloc(0);
    const finish = (reply: string | undefined) => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(2_000, () => finish(undefined));
    socket.once("error", () => finish(undefined));
    socket.once("close", () => finish(undefined));
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (data) => {
      received = Buffer.concat([received, data]);
      const end = received.indexOf("\r\n");
      if (end < 0) return;
      const header = received.subarray(0, end).toString();
      if (!header.startsWith("$")) return finish(header);
      const length = Number(header.slice(1));
      if (length < 0) return finish("");
      if (received.length >= end + 2 + length) {
        finish(received.subarray(end + 2, end + 2 + length).toString());
      }
    });
  });
}

async function ping(target: URL): Promise<boolean> {
  return (await ask(target, "PING")) === "+PONG";
}

/** Whether the cluster's first seed answers CLUSTER INFO with `cluster_state:ok`. */
async function clusterOk(seeds: string): Promise<boolean> {
  const first = seeds.split(",")[0]?.trim();
  if (!first) return false;
  const info = await ask(new URL(first), "CLUSTER INFO");
  return info?.split("\r\n").includes("cluster_state:ok") ?? false;
}

export default async function setup(project: TestProject): Promise<void> {
  // Several projects share this setup; ask (and report) once per run.
  let first = false;
  if (state.fairRedisAnswer === undefined) {
    first = true;
    state.fairRedisAnswer = ping(new URL(url));
    state.fairRedisClusterAnswer = clusterOk(clusterUrl);
  }
  const [answers, clusterAnswers] = await Promise.all([
    state.fairRedisAnswer,
    state.fairRedisClusterAnswer,
  ]);
  if (!answers) {
    if (process.env["CI"] === "true") {
      throw new Error(
        `Redis is not answering at ${url}, and CI must run the Redis tests: start it (.ci/run does)`,
      );
    }
    if (first) {
      process.stdout.write(
        `redis: nothing answers at ${url}: the Redis tests are skipped (start redis-server to run them)\n`,
      );
    }
  }
  if (!clusterAnswers) {
    if (process.env["CI"] === "true") {
      throw new Error(
        `No Redis Cluster answers cluster_state:ok at ${clusterUrl}, and CI must run the Redis Cluster tests: run \`pnpm redis:cluster start\` (.ci/run does)`,
      );
    }
    if (first) {
      process.stdout.write(
        `redis: no Redis Cluster answers cluster_state:ok at ${clusterUrl}: the Redis Cluster tests are skipped (run \`pnpm redis:cluster start\` to run them)\n`,
      );
    }
  }
  project.provide("redisUrl", answers ? url : "");
  project.provide("redisClusterUrl", clusterAnswers ? clusterUrl : "");
}
