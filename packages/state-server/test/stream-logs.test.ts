// What the server logs about Sync streams: each opened and closed at debug,
// with the peer, namespace and stream id; each refused or ended for the
// client's fault at warn with the reason, at most 20 lines per 10 s, the
// rest counted in one line; tokens never.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, test } from "vitest";
import type { ServerLogger } from "../src/index.js";
import {
  deltaUpdate,
  grpcProtobuf,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

interface Line {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps every line. */
function recorder(): { logger: ServerLogger; lines: Line[] } {
  const lines: Line[] = [];
  const keep =
    (level: Line["level"]) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return {
    lines,
    logger: { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") },
  };
}

const scratch = mkdtempSync(join(tmpdir(), "fair-stream-logs-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const refusals = (lines: readonly Line[]) =>
  lines.filter((line) => line.message === "Sync stream refused");

test("a stream is logged at debug when it opens and when it closes, with its peer, namespace and id", async () => {
  const { logger, lines } = recorder();
  server = await startServer({}, undefined, { logger });
  const client = server.connect("checkout");
  client.send(stateRequest(seed0));
  await client.until(() => client.responses.some((r) => r.fullStateLast), "the full state");
  client.end();
  await client.closed();
  await server.close();
  server = undefined;

  const opened = lines.find((line) => line.message === "Sync stream opened");
  const closed = lines.find((line) => line.message === "Sync stream closed");
  expect(opened).toMatchObject({
    level: "debug",
    fields: { namespace: "checkout", peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
  });
  expect(closed).toMatchObject({
    level: "debug",
    fields: { ...opened?.fields, code: "ok", durationMs: expect.any(Number) },
  });
  expect(refusals(lines)).toEqual([]);
});

test("a stream ended for invalid input is logged at warn with the status's reason", async () => {
  const { logger, lines } = recorder();
  server = await startServer({}, undefined, { logger });
  const client = server.connect("checkout");
  client.send(deltaUpdate(seed0, [[0, 1, Number.NaN, t0]]));
  await client.closed();

  expect(refusals(lines)).toEqual([
    {
      level: "warn",
      message: "Sync stream refused",
      fields: expect.objectContaining({
        namespace: "checkout",
        code: "invalid_argument",
        reason: expect.stringContaining("deltas[0].delta_prob"),
      }),
    },
  ]);
});

test("refusals past 20 in 10 s are counted, then reported in one line, not logged one by one", async () => {
  const { logger, lines } = recorder();
  server = await startServer({}, undefined, { logger });
  const refuseOne = async () => {
    const client = (server as TestServer).connect();
    client.send(deltaUpdate(seed0 + 1n, []));
    await client.closed();
  };
  for (let i = 0; i < 30; i++) await refuseOne();
  expect(refusals(lines)).toHaveLength(20);

  server.time.tick(10_000);
  await refuseOne();
  const summary = lines.filter((line) => line.fields["suppressed"] !== undefined);
  expect(summary).toEqual([
    expect.objectContaining({
      level: "warn",
      fields: { suppressed: 10, byCode: { invalid_argument: 10 }, intervalMs: 10_000 },
    }),
  ]);
  // A new interval: this refusal has a line of its own again.
  expect(refusals(lines)).toHaveLength(21);
});

test("a stream refused for its token is logged with the reason, never with the token", async () => {
  const token = "tok-a-secret-never-logged-0123456789";
  const tokens = join(scratch, "tokens");
  writeFileSync(tokens, `${token} checkout\n`);
  const { logger, lines } = recorder();
  server = await startServer({ authTokensFile: tokens }, undefined, { logger });
  // The token, for another namespace than its own.
  const wrongNamespace = server.open(grpcProtobuf, {
    authorization: `Bearer ${token}`,
    "fair-state-namespace": "payments",
  });
  wrongNamespace.send(stateRequest(seed0));
  await wrongNamespace.closed();
  const unknown = server.open(grpcProtobuf, { authorization: "Bearer tok-nobody-0123456789" });
  unknown.send(stateRequest(seed0));
  await unknown.closed();

  expect(refusals(lines).map((line) => line.fields["code"])).toEqual([
    "permission_denied",
    "unauthenticated",
  ]);
  expect(refusals(lines)[0]?.fields).toMatchObject({
    namespace: "payments",
    reason: expect.stringContaining('namespace "payments"'),
  });
  expect(JSON.stringify(lines)).not.toContain(token);
});
