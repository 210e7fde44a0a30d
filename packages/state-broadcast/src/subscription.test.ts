import { afterEach, describe, expect, test } from "vitest";
import { allBuckets, bucket, drain, SEED, startHub, stopHubs } from "../test/helpers.js";

afterEach(stopHubs);

describe("unsubscribing", () => {
  test("close() ends iteration and stops deliveries to that subscriber only", async () => {
    const { hub } = startHub();
    const leaving = hub.subscribe("ns");
    const staying = hub.subscribe("ns");
    const next = leaving.next();
    leaving.close();
    leaving.close();
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);

    await expect(next).resolves.toMatchObject({ done: true });
    expect(leaving.closeReason?.code).toBe("unsubscribed");
    expect(await drain(staying)).toHaveLength(1);
    expect(hub.stats().subscribers).toBe(1);
  });

  test("leaving a for await loop early closes the subscription", async () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    hub.publish("ns", SEED, [bucket(0, 2, 0.1)]);
    for await (const batch of subscription) {
      expect(batch.buckets).toHaveLength(1);
      break;
    }
    expect(subscription.closeReason?.code).toBe("unsubscribed");
    expect(hub.stats().subscribers).toBe(0);
  });

  test("aborting the subscribe signal closes the subscription; an aborted signal gives a closed one", async () => {
    const { hub } = startHub();
    const controller = new AbortController();
    const subscription = hub.subscribe("ns", { signal: controller.signal });
    const next = subscription.next();
    controller.abort();
    await expect(next).resolves.toMatchObject({ done: true });
    expect(subscription.closeReason?.code).toBe("unsubscribed");
    expect(hub.subscribe("ns", { signal: controller.signal }).closeReason?.code).toBe(
      "unsubscribed",
    );
    expect(hub.stats().subscribers).toBe(0);
  });

  test("a subscriber closing itself and another mid-flush leaves the rest with the whole flush", async () => {
    const { hub, time } = startHub({ broadcastIntervalMs: 10, maxBucketsPerBatch: 2 });
    const quitter = hub.subscribe("ns");
    const victim = hub.subscribe("ns");
    const rest = [hub.subscribe("ns"), hub.subscribe("ns")];
    const buckets = Array.from({ length: 6 }, (_, col) => bucket(0, col, 0.5));
    hub.publish("ns", SEED, buckets);
    time.tick(10);

    // The flush queued three chunks; the quitter leaves after the first.
    const first = await quitter.next();
    expect(first.value?.buckets).toHaveLength(2);
    quitter.close();
    victim.close();
    hub.publish("ns", SEED, [bucket(0, 9, 0.9)]);
    time.tick(10);

    await expect(quitter.next()).resolves.toMatchObject({ done: true });
    await expect(victim.next()).resolves.toMatchObject({ done: true });
    for (const subscription of rest) {
      expect(allBuckets(await drain(subscription))).toEqual([...buckets, bucket(0, 9, 0.9)]);
    }
  });

  test("a subscriber cut off as a slow consumer during a flush leaves those before and after it with every chunk", async () => {
    // Sweeps every 2.25 ms: the last before the second flush (at 18) finds the
    // slow subscriber stalled 8 ms; the flush at 20 finds it stalled 10 ms.
    const { hub, time } = startHub({
      broadcastIntervalMs: 10,
      maxBucketsPerBatch: 2,
      mergeAfterPendingBuckets: 1,
      maxStallMs: 9,
    });
    const before = hub.subscribe("ns");
    const slow = hub.subscribe("ns");
    const after = hub.subscribe("ns");
    const first = Array.from({ length: 4 }, (_, col) => bucket(0, col, 0.1));
    const second = Array.from({ length: 6 }, (_, col) => bucket(1, col, 0.2));
    hub.publish("ns", SEED, first);
    time.tick(10);
    const drained = [await drain(before), await drain(after)];
    hub.publish("ns", SEED, second);
    time.tick(9);
    expect(slow.closeReason).toBeUndefined();
    time.tick(1);

    expect(slow.closeReason?.code).toBe("slow_consumer");
    for (const [i, subscription] of [before, after].entries()) {
      const batches = [...(drained[i] ?? []), ...(await drain(subscription))];
      expect(allBuckets(batches)).toEqual([...first, ...second]);
    }
  });

  test("two concurrent next() calls: the second rejects with invalid_state", async () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    const first = subscription.next();
    await expect(subscription.next()).rejects.toMatchObject({ code: "invalid_state" });
    subscription.close();
    await expect(first).resolves.toMatchObject({ done: true });
  });
});

describe("poll()", () => {
  test("takes what is pending without waiting, and returns undefined when nothing is or once closed", () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    expect(subscription.poll()).toBeUndefined();
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    hub.publish("ns", SEED, [bucket(0, 2, 0.2)]);
    expect(subscription.poll()?.buckets).toEqual([bucket(0, 1, 0.1)]);
    expect(subscription.poll()?.buckets).toEqual([bucket(0, 2, 0.2)]);
    expect(subscription.poll()).toBeUndefined();
    hub.publish("ns", SEED, [bucket(0, 3, 0.3)]);
    subscription.close();
    expect(subscription.poll()).toBeUndefined();
    expect(hub.stats()).toMatchObject({ batchesDelivered: 2, bucketsDelivered: 2 });
  });

  test("leaves the batch to a next() that is already waiting", async () => {
    const { hub } = startHub();
    const subscription = hub.subscribe("ns");
    const next = subscription.next();
    expect(subscription.poll()).toBeUndefined();
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    expect(subscription.poll()).toBeUndefined();
    expect((await next).value?.buckets).toEqual([bucket(0, 1, 0.1)]);
  });
});
