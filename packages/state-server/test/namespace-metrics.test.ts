// The fair_state_namespace_* metrics: the configured namespaces and the
// first maxMetricsNamespaces others get a label of their own; every later
// namespace counts under __other__, so clients cannot grow the series.
import { afterEach, expect, test } from "vitest";
import { loadConfig } from "../src/index.js";
import { deltaUpdate, seed0, startServer, stateRequest, type TestServer, t0 } from "./harness.js";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** `name`'s samples as `{ labels → value }`, from the server's own registry. */
async function samples(name: string): Promise<Record<string, number>> {
  const metric = await (server as TestServer).running.server.metrics.registry
    .getSingleMetric(name)
    ?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((sample) => [String(sample.labels["namespace"]), sample.value]),
  );
}

test("configured namespaces and the first others are labelled; the rest share __other__", async () => {
  server = await startServer({ metricsNamespaces: ["checkout"], maxMetricsNamespaces: 1 });
  const deltas = (count: number) =>
    deltaUpdate(
      seed0,
      Array.from({ length: count }, (_, col) => [0, col, 0.01, t0] as const),
    );
  // One after the other: "search" opens first and takes the one free label;
  // "a" and "b" come later.
  const clients = [];
  for (const [i, namespace] of ["search", "checkout", "a", "b"].entries()) {
    const client = server.connect(namespace);
    client.send(deltas(i + 1));
    client.send(stateRequest(seed0));
    await client.until(() => client.responses.some((r) => r.fullStateLast), "the full state");
    clients.push(client);
  }

  expect(await samples("fair_state_namespace_deltas_received_total")).toEqual({
    search: 1,
    checkout: 2,
    __other__: 3 + 4,
  });
  expect(await samples("fair_state_namespace_streams")).toEqual({
    search: 1,
    checkout: 1,
    __other__: 2,
  });
  expect(await samples("fair_state_namespace_full_state_requests_total")).toEqual({
    search: 1,
    checkout: 1,
    __other__: 2,
  });

  for (const client of clients) {
    client.end();
    await client.closed();
  }
  expect(await samples("fair_state_namespace_streams")).toEqual({
    search: 0,
    checkout: 0,
    __other__: 0,
  });
});

test("metricsNamespaces is a list in a file and comma-separated from the environment", () => {
  const fromEnv = loadConfig({
    argv: [],
    env: { FAIR_STATE_METRICS_NAMESPACES: "checkout, search,," },
  }).config;
  expect(fromEnv.metricsNamespaces).toEqual(["checkout", "search"]);
  const fromFile = loadConfig({
    argv: ["--config=fair.yaml"],
    env: {},
    readFile: () => "metricsNamespaces: [checkout, search]\n",
  }).config;
  expect(fromFile.metricsNamespaces).toEqual(["checkout", "search"]);
  expect(loadConfig({ argv: [], env: {} }).config).toMatchObject({
    metricsNamespaces: [],
    maxMetricsNamespaces: 20,
  });
});
