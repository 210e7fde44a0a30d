// Limits on streams: each refusal has a status and a metric.
import { once } from "node:events";
import { connect } from "node:http2";
import { Code } from "@connectrpc/connect";
import { afterEach, expect, test } from "vitest";
import { seed0, startServer, stateRequest, type TestServer } from "./harness.js";

let server: TestServer;
afterEach(async () => {
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
