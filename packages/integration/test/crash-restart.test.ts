// kill -9 and restart from the snapshot (issue 10): the server's own process
// with `snapshotPath`, real StateClients streaming deltas into it, SIGKILL
// while their streams are open and one of them is mid-flow, and a new process
// on the same port from the same file. The clients reconnect by themselves
// and resync; the server comes back with the last snapshot: everything up to
// it, exactly, and of what followed only what clients re-send.
//
// Time. The server process runs on the real clock, and nothing needs
// freezing: a bucket is stored — and snapshotted, and sent — as
// (prob P, lastUpdateTimeMs T), worth P·e^(−λ(t−T)) at any time t, and
// decay is only ever applied when a delta arrives. So a bucket restored
// with the same (P, T) is worth the same at every instant, and the test
// compares (P, T) exactly: "the snapshotted value decayed to now" with no
// tolerance at all. Only the streaming bucket, whose value depends on which
// deltas made it, is compared as a decayed value at one instant, within a
// relative 1e-9: float rounding of a few hundred exp() and sums is below
// 1e-12, while one delta is more than 1e-3 of the bucket.
import { type FSWatcher, mkdtempSync, rmSync, watch } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BucketValue, StateClient } from "@fair/state-client";
import { Conditions } from "@fair/testing";
import { afterEach, expect, test } from "vitest";
import { repoRoot, ScriptProcess } from "./script-process.js";

const serverMain = join(repoRoot, "apps/state-server/src/main.ts");
/** The server's defaults, which the clients' defaults match. */
const windowMs = 300_000;
const lambda = 0.01;
const writers = 3;
/** The streaming client's bucket, and the marker it sends after the restart. */
const streamRow = writers;
const markerRow = writers + 1;
const touchedCols = [0, 1, 2];
const newCols = [100, 101, 102, 103, 104];
const streamDelta = 1e-4;

const processes: ScriptProcess[] = [];
const clients: StateClient[] = [];
let watcher: FSWatcher | undefined;
let scratch: string | undefined;
afterEach(async () => {
  watcher?.close();
  watcher = undefined;
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(processes.splice(0).map((child) => child.kill()));
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** Starts the server's process; resolves with its start-up lines once it listens. */
async function startServer(grpcAddress: string, snapshotPath: string) {
  const child = new ScriptProcess("state-server", serverMain, [
    `--grpc-listen-address=${grpcAddress}`,
    "--metrics-listen-address=127.0.0.1:0",
    `--snapshot-path=${snapshotPath}`,
    "--snapshot-interval-ms=1s",
  ]);
  processes.push(child);
  const lines: Record<string, unknown>[] = [];
  for (;;) {
    const line = await child.nextLine();
    lines.push(line);
    if (line["msg"] === "fair-state-server started") break;
  }
  const started = lines.at(-1) ?? {};
  return {
    child,
    grpcAddress: String(started["grpcAddress"]),
    metricsAddress: String(started["metricsAddress"]),
    snapshot: lines.find((line) => line["msg"] === "snapshot"),
  };
}

/** `fair_state_snapshot_writes_total{result="ok"}`, scraped on a connection of its own. */
function snapshotWrites(metricsAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`http://${metricsAddress}/metrics`, { agent: false }, (response) => {
      let text = "";
      response.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => {
        const match = /^fair_state_snapshot_writes_total\{result="ok"\} (\d+)$/m.exec(text);
        resolve(Number(match?.[1] ?? 0));
      });
    }).on("error", reject);
  });
}

/** Resolves at the next change in `dir` (or at once if one came since the last call). */
function directoryEvents(dir: string) {
  let changed = false;
  let wake: (() => void) | undefined;
  watcher = watch(dir, () => {
    changed = true;
    wake?.();
  });
  return () =>
    new Promise<void>((resolve) => {
      if (changed) {
        changed = false;
        resolve();
        return;
      }
      wake = () => {
        wake = undefined;
        changed = false;
        resolve();
      };
    });
}

const key = (b: { rowId: number; colId: number }) => `${b.rowId}:${b.colId}`;
const byKey = (buckets: readonly BucketValue[]) => new Map(buckets.map((b) => [key(b), b]));
/** A bucket's value at `atMs`, as the server and trackers decay it. */
const valueAt = (b: BucketValue | undefined, atMs: number) =>
  b === undefined
    ? 0
    : b.prob * Math.exp((-lambda * Math.max(0, atMs - b.lastUpdateTimeMs)) / 1000);

/** A real StateClient holding `seed`, with the view a tracker would keep (buckets overwritten, never deleted). */
function joinClient(baseUrl: string, seed: bigint, conditions: Conditions) {
  const view = new Map<string, BucketValue>();
  /** Full-state replies received since `resyncs.length = 0`. */
  const resyncs: (readonly BucketValue[])[] = [];
  const client = new StateClient({
    baseUrl,
    // Short flushes and backoffs keep the test quick. Adjustments not yet
    // sent wait through the restart, however many attempts it takes.
    flushIntervalMs: 5,
    initialBackoffMs: 50,
    maxBackoffMs: 250,
  });
  client.subscribe({
    onStateUpdate: (updated, buckets, fullState) => {
      if (updated !== seed) return;
      for (const bucket of buckets) view.set(key(bucket), bucket);
      if (fullState) resyncs.push(buckets);
      conditions.notify();
    },
    onStatusChange: () => conditions.notify(),
  });
  clients.push(client);
  client.connect();
  return { client, view, resyncs };
}

test("kill -9 mid-stream, restart on the same port from the snapshot: clients reconnect and resync, and the server holds the last snapshot plus what clients re-sent", async () => {
  scratch = mkdtempSync(join(tmpdir(), "fair-crash-"));
  const snapshotPath = join(scratch, "state.snapshot");
  const nextDirectoryEvent = directoryEvents(scratch);
  const first = await startServer("127.0.0.1:0", snapshotPath);
  expect(first.snapshot).toMatchObject({ kind: "missing" });
  const baseUrl = `http://${first.grpcAddress}`;
  const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);

  const conditions = new Conditions();
  const fleet = Array.from({ length: writers }, () => joinClient(baseUrl, seed, conditions));
  const streamer = joinClient(baseUrl, seed, conditions);
  const everyone = [...fleet, streamer];
  // Each holds the seed, as a tracker does, so each asks for it again after a reconnect.
  await Promise.all(everyone.map(({ client }) => client.requestFullState(seed)));
  const observer = fleet[0]?.client as StateClient;

  // A: every writer's row, cols 0..9, in one message each. Once every view
  // holds every bucket, the server has applied all of them.
  const tA = Date.now() - 1_000;
  fleet.forEach(({ client }, w) => {
    client.sendDeltaUpdate(
      seed,
      Array.from({ length: 10 }, (_, col) => ({
        rowId: w,
        colId: col,
        deltaProb: 0.01 * (w + 1) + 0.001 * col,
        lastUpdateTimeMs: tA + col,
      })),
    );
  });
  await conditions.until(() =>
    everyone.every(({ view }) =>
      fleet.every((_, w) =>
        Array.from({ length: 10 }, (_, col) => `${w}:${col}`).every((k) => view.has(k)),
      ),
    ),
  );
  const stateA = byKey(await observer.requestFullState(seed));

  // The streamer: one delta out whenever the last came back, until the kill.
  const sent: { a: number; t: number }[] = [];
  let streaming = true;
  const streamOne = () => {
    const t = Date.now();
    sent.push({ a: streamDelta, t });
    streamer.client.sendDeltaUpdate(seed, [
      { rowId: streamRow, colId: 0, deltaProb: streamDelta, lastUpdateTimeMs: t },
    ]);
  };
  streamer.client.subscribe({
    onStateUpdate: (updated, buckets, fullState) => {
      if (streaming && updated === seed && !fullState && buckets.some((b) => b.rowId === streamRow))
        streamOne();
    },
  });
  streamOne();
  await conditions.until(() => streamer.view.has(`${streamRow}:0`));

  // Wait for two snapshot writes after this point: the second began after
  // everything above was applied, so the file now holds A (and some of the stream).
  const streamFloor = streamer.view.get(`${streamRow}:0`);
  const writesBefore = await snapshotWrites(first.metricsAddress);
  while ((await snapshotWrites(first.metricsAddress)) < writesBefore + 2) {
    await nextDirectoryEvent();
  }
  const streamedBeforeSnapshot = sent.length;

  // B, right after that snapshot: each writer touches cols 0..2 again and
  // creates cols 100..104, one message each.
  const tB = Date.now();
  fleet.forEach(({ client }, w) => {
    client.sendDeltaUpdate(seed, [
      ...touchedCols.map((col) => ({
        rowId: w,
        colId: col,
        deltaProb: 0.05,
        lastUpdateTimeMs: tB,
      })),
      ...newCols.map((col) => ({
        rowId: w,
        colId: col,
        deltaProb: 0.02 * (w + 1),
        lastUpdateTimeMs: tB,
      })),
    ]);
  });
  await conditions.until(() =>
    everyone.every(({ view }) =>
      fleet.every(
        (_, w) =>
          newCols.every((col) => view.has(`${w}:${col}`)) &&
          touchedCols.every((col) => view.get(`${w}:${col}`)?.lastUpdateTimeMs === tB),
      ),
    ),
  );
  const preCrash = byKey(await observer.requestFullState(seed));

  // kill -9, with every stream open and the streamer mid-flow.
  const killed = await first.child.kill();
  streaming = false;
  expect(killed.signal).toBe("SIGKILL");
  expect(sent.length).toBeGreaterThan(streamedBeforeSnapshot);
  await conditions.until(() => everyone.every(({ client }) => client.status !== "connected"));
  for (const { resyncs } of everyone) resyncs.length = 0;

  const second = await startServer(first.grpcAddress, snapshotPath);
  expect(second.grpcAddress).toBe(first.grpcAddress);
  // Everyone reconnects by itself and asks for the seed again.
  await conditions.until(() =>
    everyone.every(({ client, resyncs }) => client.status === "connected" && resyncs.length > 0),
  );
  // The streamer's re-sent deltas go out before its marker on one stream,
  // and the server applies and broadcasts a stream's messages in order: once
  // every view has the marker, every view has all of it.
  streamer.client.sendDeltaUpdate(seed, [
    { rowId: markerRow, colId: 0, deltaProb: 0.5, lastUpdateTimeMs: Date.now() },
  ]);
  await conditions.until(() => everyone.every(({ view }) => view.has(`${markerRow}:0`)));
  const restored = byKey(await observer.requestFullState(seed));

  // What the second process loaded: one seed, A, the stream's bucket, and B
  // of the writers whose update the last snapshot caught (all or nothing:
  // one DeltaUpdate is applied, and snapshotted, as a whole).
  const caught = fleet.map((_, w) => restored.has(`${w}:${newCols[0]}`));
  const expectedLoaded = writers * 10 + 1 + newCols.length * caught.filter(Boolean).length;
  expect(second.snapshot).toMatchObject({
    kind: "loaded",
    seeds: 1,
    buckets: expectedLoaded,
    skippedSeeds: 0,
  });

  fleet.forEach((_, w) => {
    for (let col = 0; col < 10; col++) {
      const k = `${w}:${col}`;
      if (touchedCols.includes(col)) {
        // Touched after the snapshot: its B value if the snapshot caught B, else its A value.
        expect(restored.get(k), k).toEqual((caught[w] ? preCrash : stateA).get(k));
      } else {
        // Untouched since A: exactly as before the crash.
        expect(restored.get(k), k).toEqual(preCrash.get(k));
        expect(preCrash.get(k), k).toEqual(stateA.get(k));
      }
    }
    for (const col of newCols) {
      const k = `${w}:${col}`;
      expect(restored.get(k), k).toEqual(caught[w] ? preCrash.get(k) : undefined);
    }
  });
  // Nothing else came back.
  const known = (k: string) => {
    const [row = -1, col = -1] = k.split(":").map(Number);
    if (row < writers) return col < 10 || newCols.includes(col);
    return (row === streamRow || row === markerRow) && col === 0;
  };
  expect([...restored.keys()].filter((k) => !known(k))).toEqual([]);

  // The stream's bucket: at least what was in it before the snapshot, at
  // most every delta the streamer queued — lost ones are allowed, none twice.
  const atMs = Date.now();
  const streamed = valueAt(restored.get(`${streamRow}:0`), atMs);
  expect(streamed).toBeGreaterThanOrEqual(valueAt(streamFloor, atMs) * (1 - 1e-9));
  const everySent = sent.reduce(
    (sum, { a, t }) => sum + a * Math.exp((-lambda * (atMs - t)) / 1000),
    0,
  );
  expect(streamed).toBeLessThanOrEqual(everySent * (1 + 1e-9));

  for (const { client, view, resyncs } of everyone) {
    expect(client.stats().reconnects).toBeGreaterThan(0);
    expect(client.stats().deltasDropped).toEqual({
      invalid: 0,
      overflow: 0,
      too_old: 0,
      retries_exhausted: 0,
      closed: 0,
    });
    // The resync after the restart: the restored writers' rows, exactly.
    const resynced = byKey(resyncs.flat());
    for (const [k, bucket] of restored) {
      if (Number(k.split(":")[0]) < writers) expect(resynced.get(k), k).toEqual(bucket);
    }
    // Every view holds the server's full state. Clients overwrite and never
    // delete, so B buckets the server lost stay in their views as they were.
    for (const [k, bucket] of restored) expect(view.get(k), k).toEqual(bucket);
    const stale = [...view.keys()].filter((k) => !restored.has(k)).sort();
    const lost = fleet.flatMap((_, w) => (caught[w] ? [] : newCols.map((col) => `${w}:${col}`)));
    expect(stale).toEqual(lost.sort());
  }
});
