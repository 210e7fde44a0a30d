// The per-subscriber outbox, seen through the hub: shared batches while a
// subscriber keeps up, one value per key once it falls behind, and a
// slow_consumer close once it stops taking.
import { afterEach, describe, expect, test } from "vitest";
import {
  allBuckets,
  bucket,
  drain,
  latestByKey,
  SEED,
  startHub,
  stopHubs,
} from "../test/helpers.js";
import type { Batch, BucketState } from "./index.js";

afterEach(stopHubs);

describe("a subscriber that keeps up", () => {
  test("receives the shared batch objects, in order, with nothing merged", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 10 });
    const subscription = hub.subscribe("ns");
    const published: BucketState[][] = [];
    for (let i = 0; i < 5; i++) {
      const buckets = [bucket(0, 1, i / 10), bucket(0, 2, i / 10)];
      published.push(buckets);
      hub.publish("ns", SEED, buckets);
    }
    const batches = await drain(subscription);
    expect(batches.map((batch) => batch.buckets)).toEqual(published);
    for (const [i, batch] of batches.entries()) expect(batch.buckets).toBe(published[i]);
    expect(hub.stats().merges).toBe(0);
  });
});

describe("a subscriber that falls behind", () => {
  test("gets the latest value per key, not every value", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 4 });
    const slow = hub.subscribe("ns");
    for (let i = 1; i <= 10; i++)
      hub.publish("ns", SEED, [bucket(0, 1, i / 10), bucket(0, 2, i / 100)]);

    expect(slow.pendingBuckets).toBe(2);
    const batches = await drain(slow);
    expect(allBuckets(batches)).toEqual([bucket(0, 1, 1), bucket(0, 2, 0.1)]);
    expect(hub.stats().merges).toBe(18);
  });

  test("drains its merged backlog in batches of at most maxBucketsPerBatch, then shares batches again", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 4, maxBucketsPerBatch: 3 });
    const slow = hub.subscribe("ns");
    const other = hub.subscribe("ns");
    hub.publish(
      "ns",
      SEED,
      Array.from({ length: 3 }, (_, col) => bucket(0, col, 0.1)),
    );
    hub.publish(
      "ns",
      SEED,
      Array.from({ length: 3 }, (_, col) => bucket(0, col + 3, 0.1)),
    );
    await drain(other);

    const merged = await drain(slow);
    expect(merged.map((batch) => batch.buckets.length)).toEqual([3, 3]);
    hub.publish("ns", SEED, [bucket(1, 1, 0.5)]);
    const [fromSlow] = await drain(slow);
    const [fromOther] = await drain(other);
    expect(fromSlow).toBe(fromOther);
  });

  test("a newer value is never overtaken by an older one still pending", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 2, maxBucketsPerBatch: 1 });
    const slow = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    hub.publish("ns", SEED, [bucket(0, 2, 0.1)]);
    hub.publish("ns", SEED, [bucket(0, 3, 0.1)]);
    await slow.next();
    // Merging continues while the backlog is non-empty, so this lands on the
    // pending key instead of queueing behind it.
    hub.publish("ns", SEED, [bucket(0, 3, 0.9)]);
    const seen = latestByKey(await drain(slow));
    expect(seen.get(`ns/${SEED}:0:3`)).toBe(0.9);
  });
});

describe("a stalled subscriber", () => {
  test("does not delay the others: each receives every batch as it is published", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 16 });
    hub.subscribe("ns"); // never drained
    const live = hub.subscribe("ns");
    for (let i = 0; i < 1_000; i++) {
      const next = live.next();
      const buckets = [bucket(0, i % 50, i / 1_000)];
      hub.publish("ns", SEED, buckets);
      // Handed over within the publish that made it, never queued.
      expect((await next).value?.buckets).toBe(buckets);
      expect(live.pendingBuckets).toBe(0);
    }
    expect(hub.stats().batchesDelivered).toBe(1_000);
  });

  test("stays bounded by distinct keys while 1M updates are published", async () => {
    const rows = 4;
    const cols = 250;
    const distinctKeys = rows * cols;
    const mergeAfterPendingBuckets = 256;
    const { hub } = startHub({ mergeAfterPendingBuckets });
    const stalled = hub.subscribe("ns");
    const live = hub.subscribe("ns");
    const perPublish = 10;
    const publishes = 100_000;
    const last = new Map<number, number>();
    let maxPending = 0;
    let liveBuckets = 0;

    for (let i = 0; i < publishes; i++) {
      const buckets: BucketState[] = [];
      for (let j = 0; j < perPublish; j++) {
        const key = (i * 7 + j * 131) % distinctKeys;
        const prob = ((i + j) % 1_000) / 1_000;
        buckets.push(bucket(Math.floor(key / cols), key % cols, prob, i));
        last.set(key, prob);
      }
      hub.publish("ns", SEED, buckets);
      maxPending = Math.max(maxPending, stalled.pendingBuckets);
      const result = await live.next();
      liveBuckets += result.value?.buckets.length ?? 0;
    }

    expect(maxPending).toBeLessThanOrEqual(Math.max(distinctKeys, mergeAfterPendingBuckets));
    expect(maxPending).toBe(distinctKeys);
    expect(liveBuckets).toBe(publishes * perPublish);
    expect(stalled.closeReason).toBeUndefined();

    const seen = latestByKey(await drain(stalled));
    expect(seen.size).toBe(distinctKeys);
    for (const [key, prob] of last) {
      expect(seen.get(`ns/${SEED}:${Math.floor(key / cols)}:${key % cols}`)).toBe(prob);
    }
    expect(hub.stats().merges).toBe(publishes * perPublish - distinctKeys);
  });
});

describe("slow_consumer", () => {
  test("a subscriber that takes a batch every 100 ms while publishes outpace it tenfold is never closed, and ends with the latest value of every key", async () => {
    const keys = 2_048;
    const { hub, time } = startHub({
      maxBucketsPerBatch: 8,
      mergeAfterPendingBuckets: 32,
      maxPendingKeysPerSubscriber: 64,
      maxStallMs: 1_000,
    });
    const steady = hub.subscribe("ns");
    const received: Batch[] = [];
    const last = new Map<string, number>();
    let maxPending = 0;
    // 30 s of fake time: a publish of 8 buckets every 10 ms, a take of one batch (≤ 8) every 100 ms.
    for (let i = 0; i < 3_000; i++) {
      const buckets: BucketState[] = [];
      for (let j = 0; j < 8; j++) {
        const key = ((i * 8 + j) * 7919) % keys;
        const prob = ((i * 8 + j) % 997) / 997;
        buckets.push(bucket(Math.floor(key / 512), key % 512, prob, i));
        last.set(`ns/${SEED}:${Math.floor(key / 512)}:${key % 512}`, prob);
      }
      hub.publish("ns", SEED, buckets);
      time.tick(10);
      if (i % 10 === 9) {
        maxPending = Math.max(maxPending, steady.pendingBuckets);
        const batch = steady.poll();
        if (batch) received.push(batch);
      }
    }

    expect(steady.closeReason).toBeUndefined();
    // Far behind: every key pending at once, 32 times the old key limit.
    expect(maxPending).toBe(keys);
    expect(hub.stats().slowConsumerCloses).toBe(0);
    received.push(...(await drain(steady)));
    expect(latestByKey(received)).toEqual(last);
  });

  test("a subscriber that stops taking is closed once it has taken nothing for maxStallMs, whatever its backlog", async () => {
    const { hub, time } = startHub({ maxStallMs: 1_000 });
    const stopping = hub.subscribe("ns");
    const live = hub.subscribe("ns");
    let lastTakeMs = 0;
    let closedAtMs: number | undefined;
    for (let i = 0; i < 1_000 && closedAtMs === undefined; i++) {
      hub.publish("ns", SEED, [bucket(0, i, 0.1)]);
      await drain(live);
      // It takes every 100 ms for 2 s, then never again.
      if (i < 200 && i % 10 === 0 && stopping.poll()) lastTakeMs = time.now();
      time.tick(10);
      if (stopping.closeReason) closedAtMs = time.now();
    }

    expect(stopping.closeReason?.code).toBe("slow_consumer");
    expect(stopping.closeReason?.message).toMatch(
      /no batch taken for \d+ ms with \d+ buckets pending, over the limit of 1000 ms/,
    );
    const silentMs = (closedAtMs ?? Number.NaN) - lastTakeMs;
    expect(silentMs).toBeGreaterThan(1_000);
    expect(silentMs).toBeLessThanOrEqual(1_500);
    expect(live.closeReason).toBeUndefined();
    expect(hub.stats()).toMatchObject({ slowConsumerCloses: 1, subscribers: 1 });
  });

  test("closeAsSlowConsumer closes with slow_consumer and the given detail, counted once", async () => {
    const { hub } = startHub();
    const cut = hub.subscribe("ns");
    const next = cut.next();
    cut.closeAsSlowConsumer("its transport took nothing for 12 s");
    cut.closeAsSlowConsumer("again");
    cut.close();

    await expect(next).resolves.toMatchObject({ done: true });
    expect(cut.closeReason?.code).toBe("slow_consumer");
    expect(cut.closeReason?.message).toMatch(
      /namespace "ns" fell behind: its transport took nothing for 12 s; reconnect/,
    );
    expect(hub.stats()).toMatchObject({ slowConsumerCloses: 1, subscribers: 0 });
  });

  test("one flush larger than both limits is queued whole as shared batches, closing no one", async () => {
    const { hub, time } = startHub({
      broadcastIntervalMs: 10,
      maxBucketsPerBatch: 2,
      mergeAfterPendingBuckets: 2,
      maxPendingKeysPerSubscriber: 4,
    });
    const a = hub.subscribe("ns");
    const b = hub.subscribe("ns");
    hub.publish(
      "ns",
      SEED,
      Array.from({ length: 10 }, (_, col) => bucket(0, col, 0.5)),
    );
    time.tick(10);
    expect([a.closeReason, b.closeReason]).toEqual([undefined, undefined]);
    const fromA = await drain(a);
    const fromB = await drain(b);
    expect(fromA).toHaveLength(5);
    for (const [i, batch] of fromA.entries()) expect(fromB[i]).toBe(batch);
    expect(hub.stats().merges).toBe(0);
  });

  test("a subscriber that takes nothing for longer than maxStallMs is closed by the sweep, even with no publishes", async () => {
    const { hub, time } = startHub({ maxStallMs: 1_000 });
    const stalled = hub.subscribe("ns");
    const idle = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    await drain(idle);
    time.tick(1_000);
    expect(stalled.closeReason).toBeUndefined();
    time.tick(250);

    expect(stalled.closeReason?.code).toBe("slow_consumer");
    expect(stalled.closeReason?.message).toMatch(/no batch taken for 1250 ms .* limit of 1000 ms/);
    // Having nothing pending is not a stall, however long it lasts.
    time.tick(60_000);
    expect(idle.closeReason).toBeUndefined();
  });

  test("a subscriber that keeps taking, however slowly, is not stalled", async () => {
    const { hub, time } = startHub({ maxStallMs: 1_000 });
    const slow = hub.subscribe("ns");
    for (let i = 0; i < 20; i++) {
      hub.publish("ns", SEED, [bucket(0, i, 0.1)]);
      hub.publish("ns", SEED, [bucket(1, i, 0.1)]);
      time.tick(600);
      await slow.next();
    }
    expect(slow.closeReason).toBeUndefined();
    expect(slow.pendingBuckets).toBe(20);
  });

  test("is never applied when maxStallMs is Infinity", async () => {
    const { hub, time } = startHub({ maxStallMs: Number.POSITIVE_INFINITY });
    const stalled = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    time.tick(3_600_000);
    hub.publish("ns", SEED, [bucket(0, 2, 0.1)]);
    expect(stalled.closeReason).toBeUndefined();
    const batches: Batch[] = await drain(stalled);
    expect(batches).toHaveLength(2);
  });
});
