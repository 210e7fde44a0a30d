// How long the in-memory store ever blocks the event loop while it writes,
// reads and pages a seed of maxBucketsPerSeed (2^22) buckets:
// `pnpm --filter @fair/state-store bench:event-loop`.
//
// Each figure is the longest delay `perf_hooks.monitorEventLoopDelay`
// (resolution 1 ms) saw while the operation ran: the longest synchronous
// step, garbage collection included. Rows: a streamed snapshot (chunks
// collected in memory: the store's part of writing a file), the same with
// an update of 100 deltas spread over the seed between chunks (each
// written slot hands its old value to the snapshot), a streamed restore, readSeed in pages of 10 000 with a turn of the
// event loop between pages (page production only), and for comparison a
// loop of tiny steps (what the machine's scheduling adds on its own) and
// the one-step InMemoryStore.snapshot() and restore(bytes).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { InMemoryStore, type SeedCursor } from "../src/index.js";

const windowMs = 300_000;
const seed = 1_764_136_800_000n;
const nowMs = Number(seed) + 1_000;
const buckets = 2 ** 22;
const newStore = () => new InMemoryStore({ windowMs, now: () => nowMs, maxClockSkewMs: 1e12 });

function fill(store: InMemoryStore): void {
  for (let base = 0; base < buckets; base += 10_000) {
    const deltas = [];
    for (let k = base; k < Math.min(buckets, base + 10_000); k++) {
      deltas.push({
        rowId: k % 256,
        colId: k >>> 8,
        deltaProb: 0.1 + (k % 1000) * 1e-4,
        lastUpdateTimeMs: nowMs - (k % 5000),
      });
    }
    store.applyUpdate({ seed, deltas });
  }
}

interface Measured<T> {
  readonly value: T;
  readonly maxBlockMs: number;
  readonly totalMs: number;
}

async function measure<T>(run: () => Promise<T> | T): Promise<Measured<T>> {
  (globalThis as { gc?: () => void }).gc?.();
  await nextTurn();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  // Let the monitor's timer start before the work does.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const started = performance.now();
  const value = await run();
  const totalMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 5));
  delay.disable();
  return { value, maxBlockMs: delay.max / 1e6, totalMs };
}

const rows: string[][] = [];
function report(what: string, { maxBlockMs, totalMs }: Measured<unknown>, note = ""): void {
  const row = [what, `${maxBlockMs.toFixed(1)} ms`, `${(totalMs / 1000).toFixed(2)} s`, note];
  rows.push(row);
  console.error(`  ${row.join("  ")}`);
}

async function collect(chunks: AsyncIterable<Uint8Array>, between?: () => void) {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) {
    out.push(chunk);
    between?.();
  }
  return out;
}

/** Reads every chunk and keeps none (so the next measurement does not carry 70 MiB more). */
async function drain(chunks: AsyncIterable<Uint8Array>, between: () => void): Promise<number> {
  let count = 0;
  for await (const _ of chunks) {
    count++;
    between();
  }
  return count;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const store = newStore();
  fill(store);
  if (store.stats().buckets !== buckets) throw new Error("bench: wrong bucket count");
  console.error(`node ${process.version}: ${buckets} buckets in one seed`);

  const snapshot = await measure(() => collect(store.persistence.snapshot()));
  const bytes = snapshot.value.reduce((n, chunk) => n + chunk.length, 0);
  report(
    "streamed snapshot",
    snapshot,
    `(${snapshot.value.length} chunks, ${(bytes / 2 ** 20).toFixed(1)} MiB)`,
  );

  let k = 0;
  const update = () => {
    const deltas = [];
    for (let i = 0; i < 100; i++, k += 40_009) {
      const key = k % buckets;
      deltas.push({ rowId: key % 256, colId: key >>> 8, deltaProb: 0.01, lastUpdateTimeMs: nowMs });
    }
    store.applyUpdate({ seed, deltas });
  };
  const busy = await measure(() => drain(store.persistence.snapshot(), update));
  report("streamed snapshot, 100 deltas applied between chunks", busy, "(old values handed over)");

  const copy = newStore();
  const restore = await measure(() => copy.persistence.restore(snapshot.value));
  if (restore.value.buckets !== buckets) throw new Error("bench: restore lost buckets");
  report("streamed restore", restore);

  const paging = await measure(async () => {
    let cursor: SeedCursor | undefined;
    let pages = 0;
    let read = 0;
    do {
      const page = store.readSeed(seed, cursor, 10_000);
      read += page.buckets.length;
      cursor = page.next;
      pages++;
      await nextTurn();
    } while (cursor !== undefined);
    if (read !== buckets) throw new Error("bench: paging lost buckets");
    return pages;
  });
  report("readSeed, pages of 10 000", paging, `(${paging.value} pages)`);

  // What the box itself adds: the same monitor over a loop of ~0.1 ms steps.
  const floor = await measure(async () => {
    const end = performance.now() + 2_000;
    let sum = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 20_000; i++) sum += Math.sqrt(i);
      await nextTurn();
    }
    return sum;
  });
  report("for comparison: 2 s of ~0.1 ms steps (the noise floor)", floor);

  const oneStep = await measure(() => store.snapshot());
  report("InMemoryStore.snapshot(), one step", oneStep);
  const oneStepRestore = await measure(() => newStore().restore(oneStep.value));
  report("InMemoryStore.restore(bytes), one step", oneStepRestore);

  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  console.log(
    `\n@fair/state-store event-loop bench — node ${process.version}, ${buckets} buckets, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  console.log(`${"".padEnd(widths[0] ?? 0)}  longest block  total`);
  for (const [what, block, total, note] of rows) {
    console.log(
      `${(what ?? "").padEnd(widths[0] ?? 0)}  ${(block ?? "").padStart(13)}  ${(total ?? "").padStart(widths[2] ?? 0)}  ${note ?? ""}`,
    );
  }
}

await main();
