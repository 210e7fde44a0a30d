// Vitest global setup for the projects whose tests need Redis: asks Redis
// once whether it answers and hands the URL to the tests (`inject("redisUrl")`,
// "" when it does not). Without Redis the Redis tests skip, and one line says
// so; under CI (CI=true) a missing Redis fails the run instead, so the Redis
// tests never skip silently there (.ci/run starts Redis first).
import { connect } from "node:net";
// Imported so the ProvidedContext augmentation below resolves "vitest".
import type {} from "vitest";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Redis the tests may use (a key prefix of their own each), or "" when none answers. */
    redisUrl: string;
  }
}

const url = process.env["FAIR_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const state = globalThis as { fairRedisAnswer?: Promise<boolean> };

/** PING over a raw socket: no client library needed, bounded by a timeout. */
function ping(target: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.hostname, port: Number(target.port || 6379) });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => finish(data.toString().startsWith("+PONG")));
  });
}

export default async function setup(project: TestProject): Promise<void> {
  // Several projects share this setup; ask (and report) once per run.
  let first = false;
  if (state.fairRedisAnswer === undefined) {
    first = true;
    state.fairRedisAnswer = ping(new URL(url));
  }
  const answers = await state.fairRedisAnswer;
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
  project.provide("redisUrl", answers ? url : "");
}
