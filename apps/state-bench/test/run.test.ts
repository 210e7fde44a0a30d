// A short run against an in-process server: the generator's own counts, the
// server's, and the convergence check agree.
import { loadConfig, type RunningStateServer, serveStateServer } from "@fair/state-server";
import { afterEach, expect, test } from "vitest";
import { runBench } from "../src/run.js";

let server: RunningStateServer | undefined;
afterEach(async () => {
  await server?.shutdown(500);
});

test("two clients and a subscriber for one second: every delta ingested, every stream converged", async () => {
  const config = {
    ...loadConfig({ argv: [], env: {} }).config,
    grpcListenAddress: "127.0.0.1:0",
    metricsListenAddress: "127.0.0.1:0",
  };
  server = await serveStateServer({ config });
  const result = await runBench({
    target: server.grpcAddress,
    sink: false,
    metrics: server.metricsAddress,
    clients: 2,
    subscribers: 1,
    deltasPerMessage: 10,
    buckets: 30,
    ratePerClient: 2_000,
    durationS: 1,
    warmupS: 0,
    broadcastIntervalMs: 0,
    namespace: "bench",
    probeIntervalMs: 50,
    windowMs: 300_000,
    onProgress: undefined,
  });
  expect(result.converged).toBe(true);
  expect(result.deltasSentPerS).toBeGreaterThan(0);
  // The server counted what the generator sent (plus its probes).
  expect(result.deltasIngestedPerS).toBeGreaterThanOrEqual(result.deltasSentPerS);
  expect(result.bucketUpdatesDeliveredPerS).toBeGreaterThan(0);
  expect(result.propagationMs?.probes).toBeGreaterThan(0);
  expect(result.droppedDeltas).toBe(0);
});
