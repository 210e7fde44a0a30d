// The per-request path, measured: registerRequest and reportOutcome in local and distributed
// mode, and the murmur3 hash they run twice per call (32-bit limbs against a BigInt rendering).
// Each figure is the median of several timed passes after a warm-up; nothing else runs.
// Run: pnpm --filter @fair/tracker bench
import { cpus } from "node:os";
import type { StateLink } from "@fair/state-client";
import { defaultFairnessTrackerConfig, FairnessTracker, type Timers } from "../src/index.js";
import { murmur3Sum64 } from "../src/murmur3.js";

const ids = Array.from({ length: 1024 }, (_, i) => `client-${String(i).padStart(5, "0")}`);
const bytes = ids.map((id) => new TextEncoder().encode(id));
const passes = 7;
const opsPerPass = 400_000;
const stopped: Timers = {
  setTimeout: () => 0,
  clearTimeout: () => {},
  setInterval: () => 0,
  clearInterval: () => {},
};

function measure(name: string, op: (i: number) => void): void {
  for (let i = 0; i < opsPerPass; i++) op(i);
  const perOp: number[] = [];
  for (let pass = 0; pass < passes; pass++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < opsPerPass; i++) op(i);
    perOp.push(Number(process.hrtime.bigint() - start) / opsPerPass);
  }
  perOp.sort((a, b) => a - b);
  const median = perOp[Math.floor(passes / 2)] as number;
  console.log(`${name.padEnd(58)} ${median.toFixed(0).padStart(6)} ns/op`);
}

const mask = (1n << 64n) - 1n;
function bigintSum64(data: Uint8Array, seed: number): bigint {
  // Enough of the BigInt rendering to time it: the tail and finalization for ids under 16 bytes.
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & mask;
  const fmix = (k: bigint) => {
    k = ((k ^ (k >> 33n)) * 0xff51afd7ed558ccdn) & mask;
    k = ((k ^ (k >> 33n)) * 0xc4ceb9fe1a85ec53n) & mask;
    return k ^ (k >> 33n);
  };
  let h1 = BigInt(seed);
  let h2 = h1;
  let k1 = 0n;
  let k2 = 0n;
  for (let i = Math.min(data.length, 8) - 1; i >= 0; i--)
    k1 = (k1 << 8n) | BigInt(data[i] as number);
  for (let i = data.length - 1; i >= 8; i--) k2 = (k2 << 8n) | BigInt(data[i] as number);
  if (data.length > 8) h2 ^= (rotl((k2 * c2) & mask, 33n) * c1) & mask;
  h1 ^= (rotl((k1 * c1) & mask, 31n) * c2) & mask;
  h1 ^= BigInt(data.length);
  h2 ^= BigInt(data.length);
  h1 = (h1 + h2) & mask;
  h2 = (h2 + h1) & mask;
  return (fmix(h1) + fmix(h2)) & mask;
}

const nullLink: StateLink = {
  sendDeltaUpdate: () => {},
  requestFullState: async () => [],
  offerState: () => {},
  subscribe: () => () => {},
  status: "connected",
};

console.log(`node ${process.version}, ${cpus().length} CPUs, ${cpus()[0]?.model ?? "unknown CPU"}`);
console.log(`ids like ${ids[0]}, ${ids.length} of them; default config (L 3, M 1000)\n`);

let sink = 0;
measure("murmur3 Sum64, 32-bit limbs (12-byte id)", (i) => {
  const id = bytes[i & 1023] as Uint8Array;
  sink ^= murmur3Sum64(id, id.length, 42);
});
measure("murmur3 Sum64, BigInt (12-byte id)", (i) => {
  sink ^= Number(bigintSum64(bytes[i & 1023] as Uint8Array, 42) & 1n);
});

for (const mode of ["local", "distributed (no link)", "distributed (link that drops)"] as const) {
  const config = defaultFairnessTrackerConfig();
  let now = 1_764_136_800_000;
  const tracker = new FairnessTracker(config, {
    now: () => now,
    timers: stopped,
    ...(mode === "local"
      ? {}
      : {
          distributed: {
            trackerId: "bench",
            ...(mode === "distributed (link that drops)" ? { link: nullLink } : {}),
          },
        }),
  });
  measure(`${mode}: registerRequest`, (i) => {
    now += i & 1;
    if (tracker.registerRequest(ids[i & 1023] as string).shouldThrottle) sink++;
  });
  measure(`${mode}: reportOutcome`, (i) => {
    tracker.reportOutcome(ids[i & 1023] as string, (i & 7) === 0 ? "failure" : "success");
  });
  measure(`${mode}: registerRequest, Uint8Array id`, (i) => {
    if (tracker.registerRequest(bytes[i & 1023] as Uint8Array).shouldThrottle) sink++;
  });
  tracker.close();
}

// The same local registerRequest with an onDecision that counts, as a metrics exporter would:
// what the hook costs when set (without one, the local line above is the figure).
{
  let now = 1_764_136_800_000;
  const counts = { requests: 0, throttled: 0 };
  const tracker = new FairnessTracker(defaultFairnessTrackerConfig(), {
    now: () => now,
    timers: stopped,
    onDecision: (decision) => {
      counts.requests++;
      if (decision.throttled) counts.throttled++;
    },
  });
  measure("local: registerRequest, counting onDecision", (i) => {
    now += i & 1;
    if (tracker.registerRequest(ids[i & 1023] as string).shouldThrottle) sink++;
  });
  tracker.close();
  sink ^= counts.requests & 1;
}
if (sink === 0.5) console.log(sink);
