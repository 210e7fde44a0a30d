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
import { BroadcastError, Hub } from "./index.js";

afterEach(stopHubs);

describe("immediate mode (broadcastIntervalMs = 0)", () => {
  test("every subscriber, the publisher's own stream included, gets every key's latest value", async () => {
    const { hub } = startHub();
    const publisher = hub.subscribe("ns");
    const others = [hub.subscribe("ns"), hub.subscribe("ns")];
    hub.publish("ns", SEED, [bucket(0, 1, 0.1), bucket(1, 2, 0.2)]);
    hub.publish("ns", SEED, [bucket(0, 1, 0.3)]);
    hub.publish("ns", SEED + 300_000n, [bucket(0, 1, 0.4)]);

    const expected = new Map([
      [`ns/${SEED}:0:1`, 0.3],
      [`ns/${SEED}:1:2`, 0.2],
      [`ns/${SEED + 300_000n}:0:1`, 0.4],
    ]);
    for (const subscription of [publisher, ...others]) {
      expect(latestByKey(await drain(subscription))).toEqual(expected);
    }
  });

  test("one publish is one batch, the same object for every subscriber", async () => {
    const { hub } = startHub();
    const a = hub.subscribe("ns");
    const b = hub.subscribe("ns");
    const buckets = [bucket(0, 1, 0.1)];
    hub.publish("ns", SEED, buckets);

    const [fromA] = await drain(a);
    const [fromB] = await drain(b);
    expect(fromA).toBe(fromB);
    expect(fromA?.buckets).toBe(buckets);
    expect(fromA).toMatchObject({ namespace: "ns", seed: SEED });
  });

  test("a waiting consumer receives the batch as soon as it is published", async () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    const next = subscription.next();
    hub.publish("ns", SEED, [bucket(0, 1, 0.5)]);
    const result = await next;
    expect(result.done).toBe(false);
    expect(result.value?.buckets).toEqual([bucket(0, 1, 0.5)]);
  });

  test("a publish larger than maxBucketsPerBatch is split into batches of at most that size", async () => {
    const { hub } = startHub({ maxBucketsPerBatch: 4 });
    const subscription = hub.subscribe("ns");
    const buckets = Array.from({ length: 10 }, (_, col) => bucket(0, col, col / 10));
    hub.publish("ns", SEED, buckets);

    const batches = await drain(subscription);
    expect(batches.map((batch) => batch.buckets.length)).toEqual([4, 4, 2]);
    expect(allBuckets(batches)).toEqual(buckets);
  });

  test("a uint64 seed beyond 2^53 comes out exactly as it went in", async () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    const seed = 2n ** 64n - 1n;
    hub.publish("ns", seed, [bucket(0, 1, 0.5)]);
    expect((await drain(subscription))[0]?.seed).toBe(seed);
  });
});

describe("namespaces", () => {
  test("are isolated: a subscriber sees only its own namespace", async () => {
    const { hub } = startHub();
    const checkout = hub.subscribe("checkout");
    const search = hub.subscribe("search");
    const fallback = hub.subscribe("");
    hub.publish("checkout", SEED, [bucket(0, 1, 0.1)]);
    hub.publish("search", SEED, [bucket(0, 1, 0.9)]);

    expect(latestByKey(await drain(checkout))).toEqual(new Map([[`checkout/${SEED}:0:1`, 0.1]]));
    expect(latestByKey(await drain(search))).toEqual(new Map([[`search/${SEED}:0:1`, 0.9]]));
    expect(fallback.pendingBuckets).toBe(0);
  });

  test("updates to a namespace nobody subscribes to are dropped", () => {
    const { hub } = startHub({ broadcastIntervalMs: 100 });
    hub.publish("nobody", SEED, [bucket(0, 1, 0.1)]);
    expect(hub.stats()).toMatchObject({ namespaces: 0, bucketsPublished: 0 });
  });

  test("a namespace is freed with its last subscriber, however it leaves, so namespaces seen once cost nothing later", async () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 10, maxStallMs: 1_000 });
    const aborted = new AbortController();
    aborted.abort();
    for (let i = 0; i < 3_000; i++) {
      const namespace = `tenant-${i}`;
      const subscription = hub.subscribe(namespace);
      hub.publish(namespace, SEED, [bucket(0, i, 0.5)]);
      // One in three leaves by closing, one is left to stall, one subscribes already aborted.
      if (i % 3 === 0) subscription.close();
      if (i % 3 === 2) {
        subscription.close();
        hub.subscribe(namespace, { signal: aborted.signal });
      }
    }
    expect(hub.stats().namespaces).toBe(1_000);
    time.tick(10); // the flush leaves the stalled ones one update each
    time.tick(1_500);
    expect(hub.stats()).toMatchObject({ namespaces: 0, subscribers: 0, slowConsumerCloses: 1_000 });

    // A namespace subscribed to again starts empty: nothing of what it held before.
    const again = hub.subscribe("tenant-1");
    time.tick(10);
    expect(again.pendingBuckets).toBe(0);
    expect(hub.stats().namespaces).toBe(1);
  });
});

describe("interval mode (broadcastIntervalMs > 0)", () => {
  test("coalesces per key, latest value wins, and delivers nothing before the interval", async () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 100 });
    const subscription = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1), bucket(0, 2, 0.2)]);
    hub.publish("ns", SEED, [bucket(0, 1, 0.3)]);
    time.tick(99);
    expect(subscription.pendingBuckets).toBe(0);

    time.tick(1);
    const batches = await drain(subscription);
    expect(batches).toHaveLength(1);
    // One entry per key, in the order of each key's latest update.
    expect(batches[0]?.buckets).toEqual([bucket(0, 2, 0.2), bucket(0, 1, 0.3)]);
    expect(hub.stats()).toMatchObject({ coalesced: 1, flushes: 1, bucketsDelivered: 2 });
  });

  test("flushes on every interval that has changes, and only those", async () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 50 });
    const subscription = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    time.tick(50);
    expect(latestByKey(await drain(subscription))).toEqual(new Map([[`ns/${SEED}:0:1`, 0.1]]));
    time.tick(50);
    expect(subscription.pendingBuckets).toBe(0);
    hub.publish("ns", SEED, [bucket(0, 1, 0.2)]);
    time.tick(50);
    expect(latestByKey(await drain(subscription))).toEqual(new Map([[`ns/${SEED}:0:1`, 0.2]]));
    expect(hub.stats().flushes).toBe(2);
  });

  test("a large flush is split into shared chunks of at most maxBucketsPerBatch, seed by seed", async () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 10, maxBucketsPerBatch: 3 });
    const a = hub.subscribe("ns");
    const b = hub.subscribe("ns");
    hub.publish(
      "ns",
      SEED,
      Array.from({ length: 7 }, (_, col) => bucket(1, col, 0.5)),
    );
    hub.publish("ns", SEED + 1n, [bucket(1, 0, 0.5)]);
    time.tick(10);

    const fromA = await drain(a);
    const fromB = await drain(b);
    expect(fromA.map((batch) => [batch.seed, batch.buckets.length])).toEqual([
      [SEED, 3],
      [SEED, 3],
      [SEED, 1],
      [SEED + 1n, 1],
    ]);
    for (const [i, batch] of fromA.entries()) expect(fromB[i]).toBe(batch);
  });
});

describe("lifecycle", () => {
  test("stop ends every subscription: a pending next() resolves done", async () => {
    const { hub } = startHub();
    const waiting = hub.subscribe("a");
    const backlogged = hub.subscribe("b");
    const next = waiting.next();
    hub.publish("b", SEED, [bucket(0, 1, 0.1)]);
    hub.stop();

    await expect(next).resolves.toEqual({ done: true, value: undefined });
    await expect(backlogged.next()).resolves.toMatchObject({ done: true });
    expect(backlogged.pendingBuckets).toBe(0);
    for (const subscription of [waiting, backlogged]) {
      await expect(subscription.closed).resolves.toMatchObject({ code: "stopped" });
    }
    expect(hub.stats()).toMatchObject({ subscribers: 0, namespaces: 0 });
  });

  test("start is idempotent; stop is idempotent and clears every timer start set", () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 10 });
    hub.start();
    expect(hub.state).toBe("running");
    expect(time.activeIntervals).toBe(2);
    hub.stop();
    hub.stop();
    expect(time.activeIntervals).toBe(0);
    expect(hub.state).toBe("stopped");
  });

  test("a stopped hub stays stopped: start does nothing, publish is dropped, subscribe returns a closed subscription", async () => {
    const { hub, time } = startHub();
    hub.stop();
    hub.start();
    expect(hub.state).toBe("stopped");
    expect(time.activeIntervals).toBe(0);
    const late = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    expect(late.closeReason?.code).toBe("stopped");
    await expect(late.next()).resolves.toMatchObject({ done: true });
  });

  test("aborting the hub's signal stops it", async () => {
    const controller = new AbortController();
    const { hub } = startHub({ signal: controller.signal });
    const subscription = hub.subscribe("ns");
    controller.abort();
    expect(hub.state).toBe("stopped");
    await expect(subscription.closed).resolves.toMatchObject({ code: "stopped" });
  });

  test("publish and subscribe before start throw invalid_state", () => {
    const hub = new Hub();
    expect(() => hub.subscribe("ns")).toThrow(
      expect.objectContaining({ name: "BroadcastError", code: "invalid_state" }),
    );
    expect(() => hub.publish("ns", SEED, [])).toThrow(BroadcastError);
  });

  test("publish refuses a seed that is not a bigint", () => {
    const { hub } = startHub();
    expect(() => hub.publish("ns", 5 as unknown as bigint, [])).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});

test("stats() counts subscribers, deliveries and flushes as plain numbers", async () => {
  const { hub, time } = startHub({ broadcastIntervalMs: 10 });
  const a = hub.subscribe("ns");
  hub.subscribe("other");
  hub.publish("ns", SEED, [bucket(0, 1, 0.1), bucket(0, 1, 0.2), bucket(0, 2, 0.2)]);
  time.tick(10);
  await drain(a);
  expect(hub.stats()).toEqual({
    subscribers: 2,
    namespaces: 2,
    bucketsPublished: 3,
    batchesDelivered: 1,
    bucketsDelivered: 2,
    merges: 0,
    coalesced: 1,
    slowConsumerCloses: 0,
    flushes: 1,
  });
});
