// `fair-state` against a real server: for a client a distributed tracker
// throttles, `explain` prints the buckets and the final probability the
// tracker itself reports (includeStats) at the same instant; `top` ranks a
// window's buckets; `watch` prints changes as the server broadcasts them.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { StateClient } from "@fair/state-client";
import type { RunningStateServer } from "@fair/state-server";
import { defaultFairnessTrackerConfig, explainClient, FairnessTracker } from "@fair/tracker";
import { afterEach, describe, expect, test } from "vitest";
import { StateReader } from "../src/state-reader.js";
import { serveInProcess } from "./in-process-server.js";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const cli = join(repo, "apps/state-server/src/cli.ts");
const windowMs = 300_000;

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Runs the CLI's source; resolves with its exit code and output. */
function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--conditions=development", cli, ...args],
      { cwd: repo, timeout: 30_000, env: { ...process.env, FAIR_STATE_TOKEN: "" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function startServer(): Promise<RunningStateServer> {
  const running = await serveInProcess({ windowMs });
  closers.push(() => running.shutdown(500));
  return running;
}

/** A server, a connected client of it, and now's instant and window. */
async function serverAndClient() {
  const running = await startServer();
  const at = Date.now();
  const seed = BigInt(Math.floor(at / windowMs) * windowMs);
  const client = new StateClient({ baseUrl: `http://${running.grpcAddress}`, flushIntervalMs: 5 });
  closers.push(() => client.close());
  client.connect();
  return { running, client, at, seed };
}

/** Resolves once `condition` holds, checked every 20 ms; rejects after 10 s. */
async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("fair-state explain", () => {
  test("prints the buckets and the final probability the throttling tracker reports at the same instant", async () => {
    const running = await startServer();
    // The tracker's clock: real time (the server stamps and checks against
    // its own), moved by hand, within one window.
    let clock = Date.now();
    if (Math.floor((clock + 20_000) / windowMs) !== Math.floor(clock / windowMs)) clock -= 25_000;
    const client = new StateClient({
      baseUrl: `http://${running.grpcAddress}`,
      flushIntervalMs: 5,
      now: () => clock,
    });
    const config = {
      ...defaultFairnessTrackerConfig(),
      rotationFrequencyMs: windowMs,
      includeStats: true,
    };
    const tracker = new FairnessTracker(config, {
      now: () => clock,
      random: () => 0.3,
      distributed: { trackerId: "checkout", link: client },
    });
    closers.push(
      () => client.close(),
      () => tracker.close(),
    );
    client.connect();

    for (let i = 0; i < 15; i++) tracker.reportOutcome("bad-client", "failure");
    // Converged: the server holds what the tracker reads for the client.
    const seed = BigInt(tracker.structureIds.main);
    const reader = new StateReader({ target: running.grpcAddress, namespace: "" });
    closers.push(() => reader.close());
    await waitFor(async () => {
      const { buckets } = await reader.readSeed(seed);
      const server = explainClient(
        "bad-client",
        { ...config, trackerId: "checkout" },
        seed,
        buckets,
        clock,
      );
      const local = tracker.registerRequest("bad-client").stats;
      return (
        client.stats().pendingBuckets === 0 &&
        server.buckets.every((b, level) => b.prob === local?.bucketProbabilities[level])
      );
    }, "the server to hold the tracker's buckets");

    // Twenty seconds on, both decay alike.
    clock += 20_000;
    const decision = tracker.registerRequest("bad-client");
    expect(decision.shouldThrottle).toBe(true);
    const { code, stdout, stderr } = await runCli([
      "explain",
      `--target=${running.grpcAddress}`,
      "--tracker-id=checkout",
      "--client-id=bad-client",
      `--window=${windowMs}`,
      `--at=${clock}`,
      "--json",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as {
      seed: string;
      buckets: { rowId: number; colId: number; prob: number; lastUpdateTimeMs: number }[];
      finalProbability: number;
    };
    const stats = decision.stats;
    expect(printed.seed).toBe(seed.toString());
    expect(printed.buckets.map((b) => b.rowId)).toEqual([0, 1, 2]);
    expect(printed.buckets.map((b) => b.colId)).toEqual(stats?.bucketIndexes);
    printed.buckets.forEach((b, level) => {
      expect(b.prob).toBeCloseTo(stats?.bucketProbabilities[level] ?? Number.NaN, 9);
      expect(b.lastUpdateTimeMs).toBe(clock - 20_000);
    });
    expect(printed.finalProbability).toBeCloseTo(stats?.finalProbability ?? Number.NaN, 9);
    // Throttled for real: 15 failures × 0.04, decayed for 20 s at 0.01/s.
    expect(printed.finalProbability).toBeGreaterThan(0.4);
  });

  test("top prints the hottest buckets of the current window, decayed to the instant, hottest first", async () => {
    const { running, client, at, seed } = await serverAndClient();
    client.sendDeltaUpdate(
      seed,
      [0.2, 0.9, 0.5].map((deltaProb, col) => ({
        rowId: 1,
        colId: col,
        deltaProb,
        lastUpdateTimeMs: at,
      })),
    );
    const reader = new StateReader({ target: running.grpcAddress, namespace: "" });
    closers.push(() => reader.close());
    await waitFor(
      async () => (await reader.readSeed(seed)).buckets.size === 3,
      "the three buckets",
    );

    const { code, stdout } = await runCli([
      "top",
      `--target=${running.grpcAddress}`,
      `--window=${windowMs}`,
      `--at=${at + 10_000}`,
      "--count=2",
      "--json",
    ]);
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as {
      seed: string;
      buckets: number;
      top: { colId: number; prob: number; ageMs: number }[];
    };
    expect(printed).toMatchObject({ seed: seed.toString(), buckets: 3 });
    expect(printed.top.map((b) => b.colId)).toEqual([1, 2]);
    expect(printed.top[0]?.prob).toBeCloseTo(0.9 * Math.exp(-0.01 * 10), 12);
    expect(printed.top[0]?.ageMs).toBe(10_000);
  });

  test("watch starts from the window's state, prints each change the server broadcasts, and exits 0 on SIGINT", async () => {
    const { running, client, at, seed } = await serverAndClient();
    const delta = (deltaProb: number) =>
      client.sendDeltaUpdate(seed, [{ rowId: 2, colId: 7, deltaProb, lastUpdateTimeMs: at }]);
    delta(0.25);
    const reader = new StateReader({ target: running.grpcAddress, namespace: "" });
    closers.push(() => reader.close());
    await waitFor(async () => (await reader.readSeed(seed)).buckets.size === 1, "the first bucket");

    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--conditions=development",
        cli,
        "watch",
        `--target=${running.grpcAddress}`,
        `--window=${windowMs}`,
        "--json",
      ],
      { cwd: repo, stdio: ["ignore", "pipe", "inherit"] },
    );
    closers.push(() => (child.exitCode === null ? child.kill("SIGKILL") : undefined));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () =>
      JSON.parse(String((await lines.next()).value)) as Record<string, unknown>;
    // First the window's full state, which the watcher asks for as it opens…
    expect(await next()).toMatchObject({ seed: seed.toString(), rowId: 2, colId: 7, prob: 0.25 });
    // …then what changes, as broadcast.
    delta(0.5);
    expect(await next()).toMatchObject({ seed: seed.toString(), rowId: 2, colId: 7, prob: 0.75 });
    child.kill("SIGINT");
    const [exitCode] = await once(child, "exit");
    expect(exitCode).toBe(0);
  });

  test("without --client-id it says what is missing and exits 2", async () => {
    const { code, stderr } = await runCli(["explain", "--tracker-id=checkout"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--client-id is required");
  });

  test("a server that does not answer is named, with exit code 1", async () => {
    const running = await startServer();
    const address = running.grpcAddress;
    await running.shutdown(0);
    const { code, stderr } = await runCli(["top", `--target=${address}`]);
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot read ${address}`);
  });
});
