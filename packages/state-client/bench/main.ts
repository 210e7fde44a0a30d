// The caller's path: what sendDeltaUpdate costs a FAIR instance per outcome.
// Run: pnpm --filter @fair/state-client bench
import { cpus } from "node:os";
import { type BucketDelta, StateClient } from "../src/index.js";

const seed = 1_764_136_800_000n;
const t0 = Number(seed) + 1_000;

/** A client that never connects: sendDeltaUpdate only coalesces, which is all the caller pays for. */
function idleClient(maxPendingBuckets: number) {
  return new StateClient({ baseUrl: "http://127.0.0.1:1", maxPendingBuckets });
}

/**
 * ns per call for `calls` calls of one outcome's L = 3 deltas, over `flows`
 * client flows hashed to columns of `cols` buckets per level: few columns
 * coalesce into held buckets, many make new ones.
 */
function measure(name: string, flows: number, calls: number, cols: number) {
  const client = idleClient(10_000_000);
  const outcomes: BucketDelta[][] = Array.from({ length: flows }, (_, f) =>
    [0, 1, 2].map((row) => ({
      rowId: row,
      colId: (f * 7919 + row * 104_729) % cols,
      deltaProb: 0.04,
      lastUpdateTimeMs: t0,
    })),
  );
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    client.sendDeltaUpdate(seed, outcomes[i % flows] as BucketDelta[]);
  }
  const ns = Number(process.hrtime.bigint() - start) / calls;
  void client.close();
  console.log(
    `| ${name} | ${calls.toLocaleString("en")} | ${ns.toFixed(0)} ns | ${(1e9 / ns / 1e6).toFixed(2)} M calls/s |`,
  );
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}\n`);
console.log("| sendDeltaUpdate (3 deltas per call) | calls | per call | rate |");
console.log("|---|---:|---:|---:|");
for (let round = 0; round < 2; round++) {
  // The first round warms up the JIT; the second is the one to quote.
  measure("coalescing into held buckets (1,000 flows, M = 1,000)", 1_000, 2_000_000, 1_000);
  measure("a new bucket per delta (M = 2^24, 300k buckets pending)", 100_000, 100_000, 2 ** 24);
}
