// The process as an operator runs it: flags, environment, config file, exit
// codes, the start-up log line, and a clean exit on SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import { configKeys, deprecatedConfigKeys, envName, flagName } from "@fair/state-server";
import { afterEach, describe, expect, test } from "vitest";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const serverPackage = JSON.parse(
  readFileSync(join(repo, "packages/state-server/package.json"), "utf8"),
) as { version: string };
const main = join(repo, "apps/state-server/src/main.ts");
const children: ChildProcess[] = [];
const scratch: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs the server's source (no build needed) with only the given FAIR_STATE_ variables. */
function start(args: string[], env: Record<string, string> = {}) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("FAIR_STATE_")),
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=development", main, ...args],
    {
      cwd: repo,
      env: { ...inherited, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const exited = once(child, "exit").then(([code]) => ({
    code: code as number | null,
    stdout,
    stderr,
  }));
  return { child, exited };
}

/** The JSON log lines the process writes, as they come. */
async function* logLines(child: ChildProcess): AsyncGenerator<Record<string, unknown>> {
  if (!child.stdout) return;
  for await (const line of createInterface({ input: child.stdout })) {
    yield JSON.parse(line) as Record<string, unknown>;
  }
}

test("--help lists every option with its flag and environment variable, and exits 0", async () => {
  const { code, stdout } = await start(["--help"]).exited;
  expect(code).toBe(0);
  for (const key of Object.keys(configKeys) as (keyof typeof configKeys)[]) {
    expect(stdout).toContain(flagName(key));
    expect(stdout).toContain(envName(key));
  }
  for (const [old, key] of Object.entries(deprecatedConfigKeys)) {
    expect(stdout).toContain(`${old} → ${key}`);
  }
});

test("--version prints the server package's version and exits 0", async () => {
  const { code, stdout } = await start(["--version"]).exited;
  expect(code).toBe(0);
  expect(stdout).toBe(`fair-state-server ${serverPackage.version} (node ${process.version})\n`);
});

describe("bad configuration", () => {
  test("exits 2 with one line per bad field, naming its source", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fair-config-"));
    scratch.push(dir);
    const file = join(dir, "fair.yaml");
    writeFileSync(file, "windowMs: five minutes\n");
    const { code, stderr, stdout } = await start(["--config", file, "--max-rows=-3"], {
      FAIR_STATE_DECAY_RATE_PER_SECOND: "fast",
    }).exited;
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toEqual([
      "state-server: bad configuration:",
      expect.stringMatching(new RegExp(`^file ${file}: windowMs: `)),
      expect.stringMatching(/^env FAIR_STATE_DECAY_RATE_PER_SECOND: decayRatePerSecond: /),
      expect.stringMatching(/^flag --max-rows: maxRows: /),
    ]);
  });
});

describe("a running server", () => {
  test("logs the addresses it bound and its effective config, serves health, and exits 0 on SIGTERM", async () => {
    const { child, exited } = start([], {
      FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_METRICS_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_BROADCAST_INTERVAL_MS: "250ms",
    });
    const lines = logLines(child);
    const started = (await lines.next()).value ?? {};
    expect(started).toMatchObject({
      level: 30,
      msg: "fair-state-server started",
      grpcAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      // The state epoch its clients will find in fair-state-epoch.
      epoch: expect.stringMatching(/^[0-9a-f-]{36}$/),
      config: { broadcastIntervalMs: 250, windowMs: 300_000 },
      origins: { broadcastIntervalMs: "env", windowMs: "default" },
    });

    const baseUrl = `http://${started["grpcAddress"]}`;
    const sessions = new Http2SessionManager(baseUrl);
    const health = createClient(Health, createGrpcTransport({ baseUrl, sessionManager: sessions }));
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    sessions.abort();
    const ready = await fetch(`http://${started["metricsAddress"]}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`http://${started["metricsAddress"]}/metrics`)).text();
    expect(metrics).toContain(
      `fair_state_build_info{version="${serverPackage.version}",node_version="${process.version}"} 1`,
    );

    child.kill("SIGTERM");
    const messages: unknown[] = [];
    for await (const line of lines) messages.push(line["msg"]);
    expect(messages).toEqual(["shutdown requested", "shutting down", "stopped"]);
    expect((await exited).code).toBe(0);
  });

  test("an old setting name still works, and is logged once as a deprecation warning", async () => {
    const { child, exited } = start(["--broadcast-interval=250ms"], {
      FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_METRICS_LISTEN_ADDRESS: "127.0.0.1:0",
      FAIR_STATE_DECAY_RATE: "0.02",
    });
    const lines = logLines(child);
    const first = [(await lines.next()).value, (await lines.next()).value];
    expect(first).toEqual([
      expect.objectContaining({
        level: 40,
        msg: "env FAIR_STATE_DECAY_RATE is deprecated: use FAIR_STATE_DECAY_RATE_PER_SECOND (it will stop working in the next release)",
      }),
      expect.objectContaining({
        level: 40,
        msg: "flag --broadcast-interval is deprecated: use --broadcast-interval-ms (it will stop working in the next release)",
      }),
    ]);
    const started = (await lines.next()).value ?? {};
    expect(started).toMatchObject({
      msg: "fair-state-server started",
      config: { decayRatePerSecond: 0.02, broadcastIntervalMs: 250 },
      origins: { decayRatePerSecond: "env", broadcastIntervalMs: "flag" },
    });
    child.kill("SIGTERM");
    const levels: unknown[] = [];
    for await (const line of lines) levels.push(line["level"]);
    expect(levels).toEqual([30, 30, 30]);
    expect((await exited).code).toBe(0);
  });

  test("exits 1 with a clear message when its port is taken", async () => {
    const blocker = createServer().listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const { port } = blocker.address() as { port: number };
    try {
      const { code, stderr } = await start([
        `--grpc-listen-address=127.0.0.1:${port}`,
        "--metrics-listen-address=127.0.0.1:0",
      ]).exited;
      expect(code).toBe(1);
      expect(stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
      expect(stderr).toContain("EADDRINUSE");
    } finally {
      blocker.close();
    }
  });
});
