// End-to-end throughput of clients and server on loopback, in one process
// (client and server share the two cores). Run: pnpm --filter @fair/integration bench
import { cpus } from "node:os";
import { type BucketDelta, StateClient } from "@fair/state-client";
import { loadConfig, serveStateServer } from "@fair/state-server";

const CLIENTS = Number(process.env["CLIENTS"] ?? 4);
const SECONDS = Number(process.env["SECONDS"] ?? 5);
const COLS = Number(process.env["COLS"] ?? 100_000);
const windowMs = 300_000;

const config = {
  ...loadConfig({ argv: [], env: {} }).config,
  grpcListenAddress: "127.0.0.1:0",
  metricsListenAddress: "127.0.0.1:0",
  maxCols: COLS,
  logLevel: "silent" as const,
};
const running = await serveStateServer({ config });
const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
const clients = Array.from(
  { length: CLIENTS },
  () => new StateClient({ baseUrl: `http://${running.grpcAddress}`, flushIntervalMs: 50 }),
);
let received = 0;
for (const client of clients) {
  client.subscribe({ onStateUpdate: (_s, buckets) => (received += buckets.length) });
  client.connect();
}
await Promise.all(clients.map((c) => c.requestFullState(seed)));

let outcomes = 0;
let x = 12345;
const random = () => {
  x = (x * 1_103_515_245 + 12_345) >>> 0;
  return x;
};
const deadline = performance.now() + SECONDS * 1000;
const started = performance.now();
while (performance.now() < deadline) {
  const now = Date.now();
  for (const client of clients) {
    for (let i = 0; i < 200; i++) {
      const flow = random();
      const deltas: BucketDelta[] = [0, 1, 2].map((row) => ({
        rowId: row,
        colId: (flow >>> (row * 3)) % COLS,
        deltaProb: 0.04,
        lastUpdateTimeMs: now,
      }));
      client.sendDeltaUpdate(seed, deltas);
      outcomes++;
    }
  }
  await new Promise((resolve) => setImmediate(resolve));
}
const seconds = (performance.now() - started) / 1000;
const sent = clients.reduce((n, c) => n + c.stats().deltasSent, 0);
await Promise.all(clients.map((c) => c.close()));
const store = await running.server.store.stats();
const hub = running.server.hub.stats();
await running.shutdown(1_000);

const rate = (n: number) => `${Math.round(n / seconds).toLocaleString("en")}/s`;
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}; ${CLIENTS} clients, ${SECONDS} s, M = ${COLS}\n`,
);
console.log("| measure | total | rate |\n|---|---:|---:|");
console.log(
  `| outcomes reported (3 deltas each) | ${outcomes.toLocaleString("en")} | ${rate(outcomes)} |`,
);
console.log(`| deltas sent after coalescing | ${sent.toLocaleString("en")} | ${rate(sent)} |`);
console.log(
  `| deltas applied by the server | ${store.appliedDeltas.toLocaleString("en")} | ${rate(store.appliedDeltas)} |`,
);
console.log(
  `| bucket updates delivered to clients | ${hub.bucketsDelivered.toLocaleString("en")} | ${rate(hub.bucketsDelivered)} |`,
);
console.log(
  `| bucket updates received by clients | ${received.toLocaleString("en")} | ${rate(received)} |`,
);
