// Buckets delivered per second from one publisher to N in-process
// subscribers, immediate vs interval mode. Consumers drain with `for await`
// or with next() + poll(), and only count, so the figures are the hub's own
// cost: one thread does all the publishing, delivering and consuming.
// Run: pnpm --filter @fair/state-broadcast bench
import { cpus } from "node:os";
import {
  type Batch,
  type BucketState,
  Hub,
  type HubOptions,
  type Subscription,
} from "../src/index.js";

const SEEDS = [1_764_136_800_000n, 1_764_137_100_000n];
const ROWS = 3;
const COLS = 4096;
const BUCKETS_PER_PUBLISH = 32;
const PUBLISHES_PER_TURN = 32;
const WARMUP_MS = 300;
const MEASURE_MS = 1_500;
const INTERVAL_MS = 10;

interface Scenario {
  readonly subscribers: number;
  readonly mode: "immediate" | "interval";
  readonly consumer: "for await" | "next+poll";
  /** Subscribers that never drain (they fall behind onto the change log; the stall rule would close them after maxStallMs, longer than a run). */
  readonly stalled: number;
  /** Consumers also ask the hub for each batch's encoded bytes. */
  readonly encode: boolean;
}

interface Result {
  readonly scenario: Scenario;
  readonly publishedPerSec: number;
  readonly deliveredPerSec: number;
  readonly batchesPerSec: number;
  readonly merges: number;
  readonly slowCloses: number;
}

// A fixed pool of publishes, reused in turn, keeps allocation out of the loop.
function makePool(size: number): BucketState[][] {
  let state = 42;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  return Array.from({ length: size }, () =>
    Array.from({ length: BUCKETS_PER_PUBLISH }, () => ({
      rowId: Math.floor(random() * ROWS),
      colId: Math.floor(random() * COLS),
      prob: random(),
      lastUpdateTimeMs: 1_764_136_900_000,
    })),
  );
}

// The bench drives interval flushes itself, one per turn, so that interval
// mode runs as fast as the hub allows instead of at the wall-clock rate.
function manualTimers() {
  const callbacks = new Map<number, () => void>();
  let nextId = 1;
  return {
    flush: () => {
      for (const [, fn] of callbacks) fn();
    },
    timers: {
      setTimeout: () => 0,
      clearTimeout: () => {},
      setInterval: (fn: () => void, ms: number) => {
        const id = nextId++;
        if (ms === INTERVAL_MS) callbacks.set(id, fn);
        return id;
      },
      clearInterval: (handle: unknown) => {
        callbacks.delete(handle as number);
      },
    },
  };
}

async function consume(hub: Hub, subscription: Subscription, scenario: Scenario): Promise<number> {
  let bytes = 0;
  const take = (batch: Batch) => {
    bytes += scenario.encode ? hub.encode(batch).byteLength : batch.buckets.length;
  };
  if (scenario.consumer === "for await") {
    for await (const batch of subscription) take(batch);
  } else {
    for (let r = await subscription.next(); !r.done; r = await subscription.next()) {
      take(r.value);
      for (let batch = subscription.poll(); batch; batch = subscription.poll()) take(batch);
    }
  }
  return bytes;
}

// Stands in for protobuf encoding: one pass over the buckets into fresh bytes.
function encodeBatch(batch: { readonly buckets: readonly BucketState[] }): Uint8Array {
  const out = new Float64Array(batch.buckets.length * 4);
  let i = 0;
  for (const b of batch.buckets) {
    out[i++] = b.rowId;
    out[i++] = b.colId;
    out[i++] = b.prob;
    out[i++] = b.lastUpdateTimeMs;
  }
  return new Uint8Array(out.buffer);
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function run(scenario: Scenario, pool: BucketState[][]): Promise<Result> {
  const clock = manualTimers();
  const options: Partial<HubOptions> = {
    broadcastIntervalMs: scenario.mode === "interval" ? INTERVAL_MS : 0,
    timers: clock.timers,
    encode: encodeBatch,
  };
  const hub = new Hub(options).start();
  const consumers: Promise<number>[] = [];
  for (let i = 0; i < scenario.subscribers; i++) {
    const subscription = hub.subscribe("bench");
    if (i < scenario.stalled) continue;
    consumers.push(consume(hub, subscription, scenario));
  }

  let p = 0;
  const oneTurn = async () => {
    for (let i = 0; i < PUBLISHES_PER_TURN; i++) {
      hub.publish("bench", SEEDS[p & 1] as bigint, pool[p % pool.length] as BucketState[]);
      p++;
    }
    clock.flush();
    await turn();
  };

  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) await oneTurn();
  const before = hub.stats();
  const start = performance.now();
  while (performance.now() - start < MEASURE_MS) await oneTurn();
  const seconds = (performance.now() - start) / 1000;
  const after = hub.stats();
  hub.stop();
  await Promise.all(consumers);

  return {
    scenario,
    publishedPerSec: (after.bucketsPublished - before.bucketsPublished) / seconds,
    deliveredPerSec: (after.bucketsDelivered - before.bucketsDelivered) / seconds,
    batchesPerSec: (after.batchesDelivered - before.batchesDelivered) / seconds,
    merges: after.merges,
    slowCloses: after.slowConsumerCloses,
  };
}

const format = (n: number) => Math.round(n).toLocaleString("en-US");

async function main(): Promise<void> {
  const pool = makePool(1024);
  const scenarios: Scenario[] = [];
  for (const subscribers of [8, 64, 512]) {
    for (const mode of ["immediate", "interval"] as const) {
      for (const consumer of ["for await", "next+poll"] as const) {
        scenarios.push({ subscribers, mode, consumer, stalled: 0, encode: false });
      }
    }
  }
  const extra = { subscribers: 64, mode: "immediate", consumer: "for await" } as const;
  scenarios.push({ ...extra, stalled: 0, encode: true });
  scenarios.push({ ...extra, stalled: 8, encode: false });

  console.log(
    `node ${process.version}, ${cpus().length} CPUs, ${cpus()[0]?.model ?? "unknown CPU"}`,
  );
  console.log(
    `one publisher, ${BUCKETS_PER_PUBLISH} buckets per publish, ${PUBLISHES_PER_TURN} publishes per event-loop turn; ` +
      `interval mode flushes once per turn (${ROWS}x${COLS} keys x ${SEEDS.length} seeds)\n`,
  );
  const rows: Record<string, string>[] = [];
  for (const scenario of scenarios) {
    (globalThis as { gc?: () => void }).gc?.();
    const r = await run(scenario, pool);
    const note = [
      scenario.encode ? "consumers encode (memoised)" : "",
      scenario.stalled > 0
        ? `${scenario.stalled} stalled subscribers (${r.slowCloses} closed)`
        : "",
    ]
      .filter(Boolean)
      .join("; ");
    rows.push({
      subscribers: String(scenario.subscribers),
      mode: scenario.mode,
      consumer: scenario.consumer,
      "published buckets/s": format(r.publishedPerSec),
      "delivered buckets/s": format(r.deliveredPerSec),
      "delivered batches/s": format(r.batchesPerSec),
      "ns per delivered batch": format(1e9 / r.batchesPerSec),
      note,
    });
  }
  console.table(rows);
}

await main();
