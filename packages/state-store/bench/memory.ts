// What the in-memory store itself costs in resident memory:
// `pnpm --filter @fair/state-store bench:memory`.
//
// Each scenario runs in a child process of its own (RSS rarely shrinks, so
// one scenario would bill the next): it makes a store, collects garbage,
// reads process.memoryUsage().rss, fills the store, collects again and
// reads again. The figure is the growth divided by what was added — per
// bucket of one large seed, per seed of many one-bucket seeds, per
// namespace of many namespaces holding one bucket each. Run with
// --expose-gc (the package script does).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { InMemoryStore, type InMemoryStoreOptions } from "../src/index.js";

const windowMs = 300_000;
const seed = 1_764_136_800_000n;
const nowMs = Number(seed) + 1_000;

interface Scenario {
  readonly label: string;
  readonly unit: string;
  readonly count: number;
  readonly options: Partial<InMemoryStoreOptions>;
  fill(store: InMemoryStore, count: number): void;
}

// One array of delta objects, rewritten for every update: the fill leaves
// (almost) no garbage of its own behind to inflate the reading.
function oneSeed(store: InMemoryStore, count: number): void {
  const deltas = Array.from({ length: 10_000 }, () => ({
    rowId: 0,
    colId: 0,
    deltaProb: 0.25,
    lastUpdateTimeMs: nowMs,
  }));
  for (let base = 0; base < count; base += deltas.length) {
    deltas.forEach((delta, i) => {
      delta.rowId = (base + i) % 256;
      delta.colId = (base + i) >>> 8;
    });
    store.applyUpdate({ seed, deltas: deltas.slice(0, Math.min(deltas.length, count - base)) });
  }
}

const scenarios: Record<string, Scenario> = {
  "bucket-1m": {
    label: "per bucket, 2^20 buckets in one seed",
    unit: "bucket",
    count: 2 ** 20,
    options: {},
    fill: oneSeed,
  },
  "bucket-4m": {
    label: "per bucket, 2^22 buckets in one seed",
    unit: "bucket",
    count: 2 ** 22,
    options: {},
    fill: oneSeed,
  },
  seed: {
    // A 1 ms window and a long TTL, so one namespace can hold 100 000 live seeds.
    label: "per seed, 100 000 seeds of one bucket",
    unit: "seed",
    count: 100_000,
    options: {
      windowMs: 1,
      seedEvictionTtlMs: 2 ** 40,
      maxClockSkewMs: 1e12,
      maxSeedsPerNamespace: 2 ** 20,
    },
    fill(store, count) {
      for (let i = 0; i < count; i++) store.applyDelta(seed - BigInt(i), 0, 7, 0.25, nowMs);
    },
  },
  namespace: {
    label: "per namespace, 100 000 namespaces of one bucket",
    unit: "namespace",
    count: 100_000,
    options: { maxNamespaces: 2 ** 20 },
    fill(store, count) {
      for (let i = 0; i < count; i++) {
        store.namespace(`tenant-${i}`).applyDelta(seed, 0, 7, 0.25, nowMs);
      }
    },
  },
};

function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc (the bench script does)");
  gc();
  gc();
  return process.memoryUsage();
}

// Holds the store, so that it is alive at the second reading.
const sink: unknown[] = [];

function runScenario(name: string): void {
  const scenario = scenarios[name];
  if (scenario === undefined) throw new Error(`bench: no scenario ${name}`);
  const store = new InMemoryStore({
    windowMs,
    now: () => nowMs,
    maxClockSkewMs: 1e12,
    ...scenario.options,
  });
  sink.push(store);
  const before = settle();
  scenario.fill(store, scenario.count);
  const after = settle();
  const stats = store.stats();
  const held =
    scenario.unit === "bucket"
      ? stats.buckets
      : scenario.unit === "seed"
        ? stats.seeds
        : stats.namespaces;
  if (held !== scenario.count)
    throw new Error(`bench: ${name} holds ${held}, not ${scenario.count}`);
  const per = (bytes: number) => (bytes / scenario.count).toFixed(1);
  const js = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
  console.log(JSON.stringify([scenario.label, per(after.rss - before.rss), per(js)]));
}

function main(): void {
  const script = fileURLToPath(import.meta.url);
  const rows = Object.keys(scenarios).map((name) => {
    const out = execFileSync(process.execPath, [...process.execArgv, script, name], {
      encoding: "utf8",
    });
    const row = JSON.parse(out.trim().split("\n").pop() ?? "[]") as string[];
    console.error(`  ${row.join("  ")}`);
    return row;
  });
  const width = Math.max(...rows.map((r) => r[0]?.length ?? 0));
  console.log(`\n@fair/state-store memory bench — node ${process.version}\n`);
  console.log(`${"".padEnd(width)}  RSS (B)  heap + array buffers (B)`);
  for (const [label, rss, js] of rows) {
    console.log(
      `${(label ?? "").padEnd(width)}  ${(rss ?? "").padStart(7)}  ${(js ?? "").padStart(8)}`,
    );
  }
}

const scenario = process.argv[2];
if (scenario === undefined) main();
else runScenario(scenario);
