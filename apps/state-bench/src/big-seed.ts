#!/usr/bin/env node
// `pnpm bench:big-seed`: how long the server's event loop is blocked while
// it serves the full state of one very large seed, and while it snapshots
// it. The server runs in its own process (apps/state-server, built); a
// pinger (a worker thread of the bench) asks its /healthz every 5 ms, one
// request at a time, and the longest answer is the longest block (what every
// other client waited).
// (The server's own nodejs_eventloop_lag_max_seconds misses a block spent in
// a timer callback when a scrape is what ends it: seen here, a 3 s snapshot
// read as 10 ms.) One seed is filled to --buckets (default 4,194,304, the
// default maxBucketsPerSeed), then:
//   full state: one client asks for the whole seed and reads it;
//   snapshot:   the server writes its snapshot (snapshotIntervalMs = 10 s);
//   restore:    the server is restarted on that snapshot; its start-up time.
import { once } from "node:events";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import type { ClientHttp2Stream } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { GrpcFrameReader } from "@fair/state-proto";
import { openSync, requestFrame } from "./raw-sync.js";
import { startServerProcess } from "./server-process.js";
import { walkSyncResponse } from "./sync-response-walker.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    buckets: { type: "string", default: String(2 ** 22) },
    json: { type: "boolean", default: false },
  },
  strict: true,
});
const buckets = Number(values.buckets);
const windowMs = 300_000;
const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
const perMessage = 100_000;

/**
 * A GET that tries again when a kept-alive connection turns out closed (the
 * server drops idle ones after 5 s; a blocked server's are idle that long).
 */
async function get(url: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (await fetch(url)).text();
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

/** Snapshots written so far, from the server's metrics. */
async function snapshotsWritten(metricsAddress: string): Promise<number> {
  const text = await get(`http://${metricsAddress}/metrics`);
  const line = text
    .split("\n")
    .find((l) => l.startsWith('fair_state_snapshot_writes_total{result="ok"} '));
  return Number(line?.split(" ").pop() ?? 0);
}

/**
 * Asks `/healthz` every 5 ms, one at a time, until stopped, from a worker
 * thread of its own (so the bench's own work, decoding millions of buckets,
 * never delays it); resolves with the longest answer, in ms.
 */
function pinger(metricsAddress: string): { stop(): Promise<number> } {
  const worker = new Worker(
    `
    const { parentPort, workerData } = require("node:worker_threads");
    let running = true;
    let longest = 0;
    parentPort.on("message", () => { running = false; });
    (async () => {
      while (running) {
        const started = performance.now();
        for (let attempt = 1; ; attempt++) {
          try {
            await (await fetch(workerData)).text();
            break;
          } catch (error) {
            if (attempt === 5) throw error;
          }
        }
        longest = Math.max(longest, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      parentPort.postMessage(longest);
    })();
    `,
    { eval: true, workerData: `http://${metricsAddress}/healthz` },
  );
  const longest = new Promise<number>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  return {
    async stop() {
      worker.postMessage("stop");
      const result = await longest;
      await worker.terminate();
      return result;
    },
  };
}

/** Reads responses off a stream, counting full-state buckets, until the last part. */
function fullStateReader(stream: ClientHttp2Stream) {
  const reader = new GrpcFrameReader();
  let got = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  stream.on("data", (chunk: Buffer) => {
    for (const message of reader.push(chunk)) {
      const response = walkSyncResponse(message);
      if (!response.fullState) continue;
      got += response.buckets;
      if (response.fullStateLast) done();
    }
  });
  return { finished, count: () => got };
}

async function fill(address: string): Promise<void> {
  const { session, stream } = openSync(address);
  const ts = BigInt(Date.now());
  for (let first = 0; first < buckets; first += perMessage) {
    const count = Math.min(perMessage, buckets - first);
    const deltas = Array.from({ length: count }, (_, i) => {
      const n = first + i;
      return {
        rowId: BigInt(Math.floor(n / 2 ** 20)),
        colId: BigInt(n % 2 ** 20),
        deltaProb: 0.5,
        lastUpdateTimeMs: ts,
      };
    });
    if (
      !stream.write(requestFrame({ request: { case: "deltaUpdate", value: { seed, deltas } } }))
    ) {
      await once(stream, "drain");
    }
  }
  // A StateRequest for another seed is answered only after every update before it is applied.
  const reader = fullStateReader(stream);
  stream.write(
    requestFrame({ request: { case: "stateRequest", value: { seed: seed + 300_000n } } }),
  );
  await reader.finished;
  session.destroy();
}

async function fullState(address: string): Promise<{ ms: number; buckets: number }> {
  const { session, stream } = openSync(address, { windowBytes: 16 * 1024 * 1024 });
  const reader = fullStateReader(stream);
  const failed = new Promise<never>((_, reject) =>
    stream.once("error", (error) =>
      reject(new Error(`the full-state stream failed: ${error.message}`)),
    ),
  );
  const started = performance.now();
  stream.write(requestFrame({ request: { case: "stateRequest", value: { seed } } }));
  await Promise.race([reader.finished, failed]);
  const ms = performance.now() - started;
  session.destroy();
  return { ms, buckets: reader.count() };
}

const dir = mkdtempSync(join(tmpdir(), "fair-big-seed-"));
const snapshotPath = join(dir, "state.snapshot");
// Broadcasts held back (an hour's interval), so that the fill's own 4M
// updates do not flow back to it: the figures are the full state's and the
// snapshot's alone.
const flags = [
  `--snapshot-path=${snapshotPath}`,
  "--snapshot-interval-ms=10s",
  "--broadcast-interval-ms=1h",
];
try {
  const server = await startServerProcess(flags);
  const filling = performance.now();
  await fill(server.grpcAddress);
  const fillS = (performance.now() - filling) / 1000;

  const duringReply = pinger(server.metricsAddress);
  const reply = await fullState(server.grpcAddress);
  const fullStateLagMs = await duringReply.stop();

  const written = await snapshotsWritten(server.metricsAddress);
  const duringSnapshot = pinger(server.metricsAddress);
  while ((await snapshotsWritten(server.metricsAddress)) === written) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const snapshotLagMs = await duringSnapshot.stop();
  await server.stop();

  const restarting = performance.now();
  const restored = await startServerProcess(flags);
  const restoreS = (performance.now() - restarting) / 1000;
  const check = await fullState(restored.grpcAddress);
  await restored.stop();

  const result = {
    buckets,
    fillS: Number(fillS.toFixed(1)),
    fullState: {
      buckets: reply.buckets,
      ms: Math.round(reply.ms),
      maxEventLoopBlockMs: fullStateLagMs,
    },
    snapshot: { bytes: statSync(snapshotPath).size, maxEventLoopBlockMs: snapshotLagMs },
    restore: { startUpS: Number(restoreS.toFixed(1)), bucketsAfter: check.buckets },
  };
  if (values.json) console.log(JSON.stringify(result));
  else console.log(result);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
