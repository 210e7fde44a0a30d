// The real-network smoke test of docs/evaluation.md §2.8 (issue 7): three @fair/tracker
// instances, each in its own process with its own StateClient, share state
// through the state server's own process on 127.0.0.1 and converge. §2.8
// speaks of about 30 s of traffic; a few seconds are enough here (20 rounds
// per instance, each paced by a round trip through the server), because the
// point is the wiring, not the statistics the simulation in `pnpm eval`
// covers: every replica ends equal to the server, and a flow that fails on
// one instance only is throttled by all three.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BucketValue, StateClient } from "@fair/state-client";
import { afterEach, expect, test } from "vitest";
import { repoRoot, ScriptProcess } from "./script-process.js";
import {
  type DoneLine,
  type InstancePlan,
  type ReadyLine,
  smokeTrackerConfig,
  type WindowView,
  windowMs,
} from "./tracker-plan.js";

const serverMain = join(repoRoot, "apps/state-server/src/main.ts");
const trackerMain = fileURLToPath(new URL("tracker-process.ts", import.meta.url));
const { l, lambda } = smokeTrackerConfig();

const processes: ScriptProcess[] = [];
let observer: StateClient | undefined;
afterEach(async () => {
  await observer?.close();
  observer = undefined;
  await Promise.all(processes.splice(0).map((child) => child.kill()));
});

/** Starts the server's process on a free port; resolves to its URL once it says it listens. */
async function startServer(): Promise<string> {
  const server = new ScriptProcess("state-server", serverMain, [
    "--grpc-listen-address=127.0.0.1:0",
    "--metrics-listen-address=127.0.0.1:0",
    `--window-ms=${windowMs}`,
  ]);
  processes.push(server);
  const started = await server.nextLine();
  expect(started).toMatchObject({
    msg: "fair-state-server started",
    config: { windowMs, decayRatePerSecond: lambda },
  });
  return `http://${started["grpcAddress"]}`;
}

function startTracker(plan: InstancePlan): ScriptProcess {
  const tracker = new ScriptProcess(`tracker ${plan.index}`, trackerMain, [JSON.stringify(plan)]);
  processes.push(tracker);
  return tracker;
}

/** What a tracker should read at `atMs` from the server's `state`: `P·e^(−λ·(atMs − T))`, 0 where absent. */
function fromServer(state: readonly BucketValue[], level: number, column: number, atMs: number) {
  const bucket = state.find((b) => b.rowId === level && b.colId === column);
  if (bucket === undefined) return 0;
  return bucket.prob * Math.exp((-lambda * Math.max(0, atMs - bucket.lastUpdateTimeMs)) / 1000);
}

/** The view holds the server's buckets, and the server holds no live bucket outside the view. */
function expectServerState(view: WindowView, state: readonly BucketValue[]): void {
  const viewed = new Set<string>();
  for (const { bucketIndexes, bucketProbabilities } of Object.values(view.clients)) {
    bucketIndexes.forEach((column, level) => {
      viewed.add(`${level}:${column}`);
      expect(bucketProbabilities[level]).toBeCloseTo(
        fromServer(state, level, column, view.atMs),
        12,
      );
    });
  }
  const live = state.filter((b) => b.rowId < l && b.prob > 0);
  expect(live.length).toBeGreaterThan(0);
  for (const bucket of live) expect(viewed).toContain(`${bucket.rowId}:${bucket.colId}`);
}

/** Same buckets, same probabilities (within 1e-12) and same decisions as `reference`. */
function expectSameView(view: WindowView, reference: WindowView): void {
  expect(view.seedMs).toBe(reference.seedMs);
  expect(view.atMs).toBe(reference.atMs);
  for (const [id, expected] of Object.entries(reference.clients)) {
    const actual = view.clients[id];
    expect(actual?.bucketIndexes).toEqual(expected.bucketIndexes);
    expected.bucketProbabilities.forEach((p, level) => {
      expect(actual?.bucketProbabilities[level]).toBeCloseTo(p, 12);
    });
    expect(actual?.shouldThrottle).toBe(expected.shouldThrottle);
  }
}

test("three trackers in three processes converge through the server, and a flow failing on one is throttled on all", async () => {
  const bad = ["bad-a", "bad-b"];
  const good = ["good-1", "good-2", "good-3"];
  // The current window of the server's clock, so it accepts both windows' seeds.
  const startMs = Math.floor(Date.now() / windowMs) * windowMs;
  const common = { instances: 3, startMs, rounds: 20, failuresPerRound: 2 };
  const plans: InstancePlan[] = [
    { ...common, index: 0, failing: ["bad-a"], succeeding: good, watched: [...bad, ...good] },
    { ...common, index: 1, failing: ["bad-b"], succeeding: good, watched: [...bad, ...good] },
    // Instance 2 never sees a failure: whatever it throttles, it learned from the others.
    { ...common, index: 2, failing: [], succeeding: good, watched: [...bad, ...good] },
  ];
  // All four processes load at once; the trackers learn the server's port when it has one.
  const trackers = plans.map(startTracker);
  const baseUrl = await startServer();
  for (const tracker of trackers) tracker.send(`connect ${baseUrl}`);

  const ready = (await Promise.all(trackers.map((t) => t.nextLine()))) as unknown as ReadyLine[];
  for (const { type, view } of ready) {
    expect(type).toBe("ready");
    for (const client of Object.values(view.clients)) {
      expect(client).toMatchObject({ finalProbability: 0, shouldThrottle: false });
    }
  }

  for (const tracker of trackers) tracker.send("go");
  const done = (await Promise.all(trackers.map((t) => t.nextLine()))) as unknown as DoneLine[];
  const exits = await Promise.all(trackers.map((t) => t.exited));

  // Asked before connect(): StateClient sends a request made while it is connecting only after
  // its next reconnect (see the tracker process, which builds its tracker before connecting too).
  observer = new StateClient({ baseUrl, windowMs });
  const serverState = Promise.all([
    observer.requestFullState(BigInt(startMs)),
    observer.requestFullState(BigInt(startMs + windowMs)),
  ]);
  observer.connect();
  const [current, next] = await serverState;

  const [first] = done;
  if (first === undefined) throw new Error("no tracker finished");
  expect(first.current.seedMs).toBe(startMs);
  expect(first.next.seedMs).toBe(startMs + windowMs);
  for (const line of done) {
    expect(line.type).toBe("done");
    expectServerState(line.current, current);
    expectServerState(line.next, next);
    expectSameView(line.current, first.current);
    expectSameView(line.next, first.next);
    // The window that was the secondary had every outcome too, so the next window still throttles.
    for (const view of [line.current, line.next]) {
      for (const id of bad) expect(view.clients[id]?.shouldThrottle).toBe(true);
      for (const id of good) expect(view.clients[id]?.shouldThrottle).toBe(false);
    }
    expect(line.current.clients["bad-a"]?.finalProbability).toBeGreaterThan(0.99);
    expect(line.deltasDropped).toBe(0);
    expect(line.errors).toEqual([]);
    expect(line.syncStats).toMatchObject({ sendErrors: 0, fullStateFailures: 0 });
  }
  // Every process closed its tracker and client and exited on its own: nothing left open.
  expect(exits.map((exit) => exit.code)).toEqual([0, 0, 0]);
}, 20_000);
