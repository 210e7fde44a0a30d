// Replica-side coalescing (flushIntervalMs): the adjustments a replica
// receives per bucket are summed, decayed to the latest time, and sent to
// Redis once per interval. Time is fake: nothing is sent until the test
// moves the clock past the interval.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import type { UpdateResult } from "@fair/state-store";
import { FakeTime } from "@fair/testing";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";
import { KeyLayout, type SlotGroup } from "./keys.js";
import { parseMessage } from "./message.js";

const url = inject("redisUrl");
const windowMs = 300_000;
const decayRatePerSecond = 0.05;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function coalescing(options: Partial<RedisStoreOptions> = {}) {
  const time = new FakeTime();
  const keyPrefix = uniqueKeyPrefix("coalesce");
  const store = new RedisStore({
    url,
    keyPrefix,
    windowMs,
    decayRatePerSecond,
    flushIntervalMs: 5,
    now: time.now,
    timers: time.timers,
    ...options,
  });
  cleanups.push(() => deleteKeys(url, keyPrefix));
  cleanups.push(() => store.stop());
  store.start();
  await store.whenReady();
  // What goes out on the change channel: one message per script call.
  const published: number[] = [];
  const raw = new Redis(url);
  cleanups.push(async () => raw.disconnect());
  raw.on("smessageBuffer", (_channel: Buffer, data: Buffer) => {
    const message = parseMessage(data);
    if (message) published.push(message.buckets.length);
  });
  await raw.ssubscribe((new KeyLayout(keyPrefix, 1).groups[0] as SlotGroup).channel);
  const seed = BigInt(Math.floor(time.now() / windowMs) * windowMs);
  return { store, time, seed, published, raw };
}

function update(seed: bigint, deltas: [number, number, number, number][]): DeltaUpdate {
  return create(DeltaUpdateSchema, {
    seed,
    deltas: deltas.map(([row, col, deltaProb, ts]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      deltaProb,
      lastUpdateTimeMs: BigInt(ts),
    })),
  });
}

/** Resolves once `count` messages were published (the raw subscriber hears them after the script). */
async function heard(raw: Redis, published: number[], count: number): Promise<void> {
  while (published.length < count)
    await new Promise((resolve) => raw.once("smessageBuffer", resolve));
}

describe.skipIf(url === "")("coalescing on a replica (flushIntervalMs)", () => {
  test("adjustments to one bucket within an interval go to Redis as one entry: Σ aⱼ·e^(−λ(t_max − tⱼ)) at t_max", async () => {
    const { store, time, seed, published, raw } = await coalescing();
    const t = time.now();
    let settled = 0;
    const count = (result: Promise<UpdateResult>) => result.finally(() => settled++);
    const first = count(store.applyUpdate(update(seed, [[0, 1, 0.3, t - 2_000]])));
    const second = count(store.applyUpdate(update(seed, [[0, 1, 0.2, t]])));
    // A late one, older than the sum's time: decayed to it.
    const third = count(
      store.applyUpdate(
        update(seed, [
          [0, 1, 0.1, t - 4_000],
          [2, 9, 0.5, t],
        ]),
      ),
    );
    await Promise.resolve();
    expect(settled).toBe(0);
    expect(published).toEqual([]);

    time.tick(5);
    const results = await Promise.all([first, second, third]);
    const lambda = decayRatePerSecond / 1000;
    const expected = 0.3 * Math.exp(-lambda * 2_000) + 0.2 + 0.1 * Math.exp(-lambda * 4_000);
    for (const result of results) {
      expect(result.status).toBe("applied");
      expect(result.buckets).toContainEqual({
        rowId: 0,
        colId: 1,
        prob: expected,
        lastUpdateTimeMs: t,
      });
    }
    expect(await store.getSeed(seed)).toEqual(
      expect.arrayContaining([
        { rowId: 0, colId: 1, prob: expected, lastUpdateTimeMs: t },
        { rowId: 2, colId: 9, prob: 0.5, lastUpdateTimeMs: t },
      ]),
    );
    // Three updates, one script call, one message with the two buckets.
    await heard(raw, published, 1);
    expect(published).toEqual([2]);
    // Counted as the four deltas the updates carried.
    expect((await store.stats()).appliedDeltas).toBe(4);
  });

  test("the clamp to [0, 1] applies once per interval, to the sum", async () => {
    const { store, time, seed } = await coalescing();
    const t = time.now();
    const setUp = store.applyUpdate(update(seed, [[0, 0, 0.9, t]]));
    time.tick(5);
    await setUp;
    // Applied one by one: min(1, 0.9 + 0.3) − 0.3 = 0.7. Summed first: 0.9 + 0 = 0.9.
    const up = store.applyUpdate(update(seed, [[0, 0, 0.3, t]]));
    const down = store.applyUpdate(update(seed, [[0, 0, -0.3, t]]));
    time.tick(5);
    await Promise.all([up, down]);
    expect(await store.getSeed(seed)).toEqual([
      { rowId: 0, colId: 0, prob: 0.9, lastUpdateTimeMs: t },
    ]);
  });

  test("stop() sends what is held before it disconnects; updates resolve, none is lost", async () => {
    const { store, time, seed } = await coalescing();
    const t = time.now();
    const held = store.applyUpdate(update(seed, [[1, 1, 0.25, t]]));
    await store.stop();
    expect((await held).status).toBe("applied");
    const reader = new RedisStore({
      url,
      keyPrefix: store.options.keyPrefix,
      windowMs,
      now: time.now,
    });
    cleanups.push(() => reader.stop());
    reader.start();
    await reader.whenReady();
    expect(await reader.getSeed(seed)).toEqual([
      { rowId: 1, colId: 1, prob: 0.25, lastUpdateTimeMs: t },
    ]);
  });

  test("timestamps past now + maxClockSkewMs are clamped before they are summed, and counted per update", async () => {
    const { store, time, seed } = await coalescing({ maxClockSkewMs: 1_000 });
    const t = time.now();
    const late = store.applyUpdate(update(seed, [[0, 3, 0.1, t + 60_000]]));
    time.tick(5);
    const result = await late;
    expect(result.clampedTimestamps).toBe(1);
    expect(result.buckets).toEqual([
      { rowId: 0, colId: 3, prob: 0.1, lastUpdateTimeMs: t + 1_000 },
    ]);
    expect((await store.stats()).clampedTimestamps).toBe(1);
  });

  test("flushIntervalMs outside [0, 1000] ms is refused, naming the option", () => {
    for (const flushIntervalMs of [-1, 1.5, 1_001]) {
      expect(() => new RedisStore({ flushIntervalMs })).toThrow(
        expect.objectContaining({ code: "invalid_option", field: "flushIntervalMs" }),
      );
    }
  });
});
