// Each bad input ends only its own stream, with a status naming what was
// wrong, and leaves the shared state and every other stream untouched.
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { SyncRequestSchema } from "@fair/state-proto";
import { afterEach, describe, expect, test } from "vitest";
import {
  type DeltaTuple,
  deltaUpdate,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

/** A valid first delta, so the tests see that nothing of a rejected message is applied. */
const good: DeltaTuple = [0, 1, 0.25, t0];

describe.each([
  [
    "a NaN delta_prob",
    [good, [0, 2, Number.NaN, t0]],
    Code.InvalidArgument,
    "delta_update.deltas[1].delta_prob",
  ],
  [
    "an infinite delta_prob",
    [good, [0, 2, Number.POSITIVE_INFINITY, t0]],
    Code.InvalidArgument,
    "deltas[1].delta_prob",
  ],
  [
    "a delta_prob beyond ±1",
    [good, [0, 2, -1.5, t0]],
    Code.InvalidArgument,
    "deltas[1].delta_prob",
  ],
  ["a row_id at the bound", [good, [256, 2, 0.1, t0]], Code.InvalidArgument, "deltas[1].row_id"],
  [
    "a col_id at the bound",
    [good, [0, 2 ** 24, 0.1, t0]],
    Code.InvalidArgument,
    "deltas[1].col_id",
  ],
] as const)("%s", (_name, deltas, code, field) => {
  test(`ends that stream with ${Code[code]} naming ${field}; state and other streams untouched`, async () => {
    server = await startServer();
    await expectRejected(deltaUpdate(seed0, deltas), code, field);
  });
});

test("too many deltas in one message: RESOURCE_EXHAUSTED", async () => {
  server = await startServer({ maxDeltasPerMessage: 10 });
  const deltas = Array.from({ length: 11 }, (_, i): DeltaTuple => [0, i, 0.1, t0]);
  await expectRejected(
    deltaUpdate(seed0, deltas),
    Code.ResourceExhausted,
    "more than the limit of 10",
  );
});

test("a message over the size limit: RESOURCE_EXHAUSTED", async () => {
  server = await startServer({ maxMessageBytes: 1024 });
  const deltas = Array.from({ length: 100 }, (_, i): DeltaTuple => [0, i, 0.1, t0]);
  await expectRejected(deltaUpdate(seed0, deltas), Code.ResourceExhausted, "1024");
});

test("a seed that is not a window start: INVALID_ARGUMENT naming seed", async () => {
  server = await startServer();
  await expectRejected(
    create(SyncRequestSchema, {
      request: { case: "deltaUpdate", value: { seed: seed0 + 1n, deltas: [] } },
    }),
    Code.InvalidArgument,
    "seed",
  );
});

test("a namespace header over 256 characters: INVALID_ARGUMENT naming the header", async () => {
  server = await startServer();
  const client = server.connect("n".repeat(257));
  client.send(stateRequest(seed0));
  const error = await client.closed();
  expect(error?.code).toBe(Code.InvalidArgument);
  expect(error?.message).toContain("fair-state-namespace");
});

test("a request with no case set is ignored", async () => {
  server = await startServer();
  const client = server.connect();
  client.send(create(SyncRequestSchema, {}), stateRequest(seed0));
  await client.until(() => client.responses.length === 1);
  expect(client.error).toBeUndefined();
});

/**
 * Sends `bad` on one stream while an observer and a writer stay connected:
 * the bad stream gets `code` with `field` in the message; the observer sees
 * the writer's later update and nothing of the bad one; the state holds only
 * the writer's bucket; the rejection is counted.
 */
async function expectRejected(
  bad: ReturnType<typeof deltaUpdate>,
  code: Code,
  field: string,
): Promise<void> {
  const observer = server.connect();
  const offender = server.connect();
  offender.send(bad);
  const error = await offender.closed();
  expect(error?.code, error?.message).toBe(code);
  expect(error?.message).toContain(field);

  const writer = server.connect();
  writer.send(deltaUpdate(seed0, [[5, 5, 0.5, t0]]));
  await observer.until(() => observer.responses.length === 1, "the writer's broadcast");
  expect(observer.view(seed0)).toEqual([{ rowId: 5, colId: 5, prob: 0.5, lastUpdateTimeMs: t0 }]);
  expect(await server.running.server.store.getSeed(seed0)).toEqual([
    { rowId: 5, colId: 5, prob: 0.5, lastUpdateTimeMs: t0 },
  ]);
  expect(observer.error).toBeUndefined();
  expect(writer.error).toBeUndefined();

  const metrics = await server.running.server.metrics.registry.getSingleMetricAsString(
    "fair_state_streams_closed_total",
  );
  expect(metrics).toMatch(/code="(invalid_argument|resource_exhausted)"\} 1/);
}
