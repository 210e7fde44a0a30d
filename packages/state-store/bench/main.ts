// The store's hot paths, measured: `pnpm --filter @fair/state-store bench`.
// Prints one table; the figures quoted in the README come from it. Run with
// --expose-gc (the package script does) so the memory rows are meaningful.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import { InMemoryStore, type Store } from "../src/index.js";

const windowMs = 300_000;
const seed = 1_764_136_800_000n;
const baseMs = Number(seed) + 1_000;
// A fixed clock inside the seed's window: the bench measures the store, not
// Date.now(); the skew bound is lifted so advancing timestamps stay unclamped.
const clock = () => baseMs;
const newStore = () =>
  new InMemoryStore({ windowMs, now: clock, maxClockSkewMs: 1e12, decayRatePerSecond: 0.01 });

const rows: string[][] = [];
function report(what: string, value: string, note = ""): void {
  rows.push([what, value, note]);
  console.error(`  ${what}: ${value} ${note}`);
}

// xorshift, so every run sees the same keys and deltas.
let state = 0x2545f491;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}

// A tracker's mix: most outcomes are successes (−Pd), some failures (+Pi).
function randomDelta(): number {
  return random() < 0.3 ? 0.05 : -0.01;
}

function makeUpdates(count: number, perUpdate: number, levels: number, cols: number) {
  const updates: DeltaUpdate[] = [];
  for (let u = 0; u < count; u++) {
    const deltas = [];
    for (let d = 0; d < perUpdate; d++) {
      deltas.push({
        rowId: BigInt(Math.floor(random() * levels)),
        colId: BigInt(Math.floor(random() * cols)),
        deltaProb: randomDelta(),
        lastUpdateTimeMs: BigInt(baseMs + u),
      });
    }
    updates.push(create(DeltaUpdateSchema, { seed, deltas }));
  }
  return updates;
}

// Moves every timestamp forward, outside the timed section, so each pass
// is in order like live traffic rather than a replay of late deltas.
function advance(updates: DeltaUpdate[], byMs: bigint): void {
  for (const update of updates) for (const d of update.deltas) d.lastUpdateTimeMs += byMs;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

// Rates are the median over passes: the box is shared, and one pass that
// meets a major GC or a neighbour's burst should not move the figure.
function batchRate(label: string, levels: number, cols: number): void {
  const store = newStore();
  const updates = makeUpdates(2_000, 100, levels, cols);
  const rates: number[] = [];
  for (let pass = 0; pass < 16; pass++) {
    const start = process.hrtime.bigint();
    for (const update of updates) store.applyUpdate(update);
    const ns = Number(process.hrtime.bigint() - start);
    // The first passes warm the JIT and fill the tables.
    if (pass >= 3) rates.push((updates.length * 100) / ns);
    advance(updates, 2_000n);
  }
  report(
    `batch apply, 100 deltas/update, ${label}`,
    `${(median(rates) * 1e3).toFixed(2)}M deltas/s`,
    `(${store.stats().buckets} buckets held)`,
  );
}

function singleRate(): void {
  const store = newStore();
  const count = 200_000;
  const keys = Array.from(
    { length: count },
    () => [Math.floor(random() * 3), Math.floor(random() * 1000), randomDelta()] as const,
  );
  const rates: number[] = [];
  for (let pass = 0; pass < 13; pass++) {
    const ts = baseMs + pass * 1000;
    const start = process.hrtime.bigint();
    for (const [row, col, a] of keys) store.applyDelta(seed, row, col, a, ts);
    const ns = Number(process.hrtime.bigint() - start);
    if (pass >= 2) rates.push(count / ns);
  }
  report("single applyDelta, 3 × 1000 keys", `${(median(rates) * 1e3).toFixed(2)}M deltas/s`);
}

// The MaybePromise decision: the same batches applied by a plain call, by
// `await` of the plain value (what a caller generic over Store does), and
// through an async wrapper (what an always-async interface would cost).
// Interleaved in short rounds, in rotating order, compared by median.
async function syncVersusAwait(): Promise<void> {
  const store = newStore();
  const generic: Store = store;
  const asPromise = async (u: DeltaUpdate) => store.applyUpdate(u);
  const chunk = makeUpdates(200, 100, 3, 1000);
  const variants = {
    sync: async () => {
      for (const u of chunk) store.applyUpdate(u);
    },
    awaited: async () => {
      for (const u of chunk) await generic.applyUpdate(u);
    },
    promised: async () => {
      for (const u of chunk) await asPromise(u);
    },
  };
  const names = Object.keys(variants) as (keyof typeof variants)[];
  const samples = { sync: [] as number[], awaited: [] as number[], promised: [] as number[] };
  for (let round = 0; round < 240; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length] as keyof typeof variants;
      advance(chunk, 1_000n);
      const start = process.hrtime.bigint();
      await variants[name]();
      const perBatch = Number(process.hrtime.bigint() - start) / chunk.length;
      if (round >= 30) samples[name].push(perBatch);
    }
  }
  const sync = median(samples.sync);
  report("batch of 100, sync call", `${(sync / 1000).toFixed(2)} µs/batch`, "(median)");
  for (const [label, name] of [
    ["batch of 100, await of the plain value", "awaited"],
    ["batch of 100, await of an async wrapper", "promised"],
  ] as const) {
    const t = median(samples[name]);
    const sign = t >= sync ? "+" : "";
    report(
      label,
      `${(t / 1000).toFixed(2)} µs/batch`,
      `(${sign}${(t - sync).toFixed(0)} ns, ${sign}${(((t - sync) / sync) * 100).toFixed(1)} %)`,
    );
  }
}

function getSeedTime(): void {
  const store = newStore();
  const target = 100_000;
  for (let col = 0; col < target; col += 1000) {
    const deltas = [];
    for (let c = col; c < col + 1000; c++) {
      deltas.push({
        rowId: BigInt(c % 4),
        colId: BigInt(c),
        deltaProb: 0.1,
        lastUpdateTimeMs: BigInt(baseMs),
      });
    }
    store.applyUpdate(create(DeltaUpdateSchema, { seed, deltas }));
  }
  for (let i = 0; i < 5; i++) store.getSeed(seed);
  // Median: a run that meets a young-generation GC (it copies the 100k
  // fresh objects) takes several times longer than one that does not.
  const times: number[] = [];
  for (let i = 0; i < 31; i++) {
    const start = process.hrtime.bigint();
    if (store.getSeed(seed).length !== target) throw new Error("bench: wrong bucket count");
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => (times[Math.floor(q * (times.length - 1))] ?? 0).toFixed(1);
  report("getSeed of a 100k-bucket seed", `${at(0.5)} ms`, `(median; min ${at(0)}, max ${at(1)})`);
}

function usedBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc (the bench script does)");
  gc();
  gc();
  const m = process.memoryUsage();
  // Typed-array storage lives outside the JS heap; count both.
  return m.heapUsed + m.arrayBuffers;
}

// Holds what is being measured, so that neither the optimiser nor the GC can
// free it between the two readings; emptied before the next measurement.
const sink: unknown[] = [];

function heapPerItem(count: number, build: () => unknown): number {
  sink.length = 0;
  const before = usedBytes();
  sink.push(build());
  const after = usedBytes();
  sink.length = 0;
  return (after - before) / count;
}

function bytesPerBucket(): void {
  const count = 1_000_000;
  const perBucket = heapPerItem(count, () => {
    const store = newStore();
    for (let base = 0; base < count; base += 1000) {
      const deltas = [];
      for (let k = base; k < base + 1000; k++) {
        deltas.push({
          rowId: BigInt(k % 4),
          colId: BigInt(Math.floor(k / 4)),
          deltaProb: 0.1,
          lastUpdateTimeMs: BigInt(baseMs),
        });
      }
      store.applyUpdate(create(DeltaUpdateSchema, { seed, deltas }));
    }
    if (store.stats().buckets !== count) throw new Error("bench: wrong bucket count");
    return store;
  });
  report(
    "bytes per stored bucket, 1M buckets",
    `${perBucket.toFixed(1)} B`,
    "(heap + array buffers)",
  );
  // The layout not taken, for comparison: one object per bucket in a Map.
  const naive = heapPerItem(count, () => {
    const map = new Map<number, { prob: number; lastUpdateTimeMs: number }>();
    for (let k = 0; k < count; k++) {
      map.set((k % 4) * 2 ** 24 + Math.floor(k / 4), {
        prob: 0.1 + k * 1e-9,
        lastUpdateTimeMs: baseMs + k,
      });
    }
    return map;
  });
  report("  for comparison: Map of an object per bucket", `${naive.toFixed(1)} B`);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  console.error(`node ${process.version}`);
  singleRate();
  batchRate("3 × 1000 keys", 3, 1000);
  batchRate("8 × 2^20 keys (wide)", 8, 2 ** 20);
  await syncVersusAwait();
  getSeedTime();
  bytesPerBucket();
  const width = Math.max(...rows.map((r) => r[0]?.length ?? 0));
  const valueWidth = Math.max(...rows.map((r) => r[1]?.length ?? 0));
  console.log(
    `\n@fair/state-store bench — node ${process.version}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  for (const [what, value, note] of rows) {
    console.log(
      `${(what ?? "").padEnd(width)}  ${(value ?? "").padStart(valueWidth)}  ${note ?? ""}`,
    );
  }
}

await main();
