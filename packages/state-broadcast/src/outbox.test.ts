// The per-subscriber outbox, seen through the hub: shared batches while a
// subscriber keeps up, one value per key once it falls behind, and a
// slow_consumer close when it breaks a limit.
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
  test("a subscriber with more distinct keys pending than allowed is closed, with the figures in the reason", async () => {
    const { hub } = startHub({ mergeAfterPendingBuckets: 2, maxPendingKeysPerSubscriber: 5 });
    const slow = hub.subscribe("ns");
    const live = hub.subscribe("ns");
    const next = slow.next();
    hub.publish("ns", SEED, [bucket(0, 0, 0.1)]);
    await next;
    let liveBatches = (await drain(live)).length;
    // The limit is judged when the next publish arrives, on what is left.
    for (let col = 1; col <= 7; col++) {
      hub.publish("ns", SEED, [bucket(0, col, 0.1)]);
      liveBatches += (await drain(live)).length;
    }

    expect(slow.closeReason?.code).toBe("slow_consumer");
    expect(slow.closeReason?.message).toMatch(/6 distinct keys pending, over the limit of 5/);
    await expect(slow.closed).resolves.toBe(slow.closeReason);
    await expect(slow.next()).resolves.toMatchObject({ done: true });
    expect(liveBatches).toBe(8);
    expect(hub.stats()).toMatchObject({ slowConsumerCloses: 1, subscribers: 1 });
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
