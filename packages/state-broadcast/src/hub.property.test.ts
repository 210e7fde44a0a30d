// For any interleaving of publishes, partial drains and flushes, once every
// subscriber has drained, each has seen the last published value of every key,
// and none ever received a value older than one it had already seen.

import { FakeTime } from "@fair/testing";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { drain, latestByKey } from "../test/helpers.js";
import { type Batch, type BucketState, Hub } from "./index.js";

const NAMESPACES = ["", "a"];
const SUBSCRIBERS = 3;

const publishOp = fc.record({
  kind: fc.constant("publish" as const),
  namespace: fc.constantFrom(...NAMESPACES),
  seed: fc.constantFrom(1n, 2n, 2n ** 63n),
  buckets: fc.array(
    fc.record({
      rowId: fc.integer({ min: 0, max: 2 }),
      colId: fc.integer({ min: 0, max: 30 }),
      prob: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    { maxLength: 40 },
  ),
});
const takeOp = fc.record({
  kind: fc.constant("take" as const),
  subscriber: fc.nat({ max: SUBSCRIBERS * NAMESPACES.length - 1 }),
  count: fc.integer({ min: 1, max: 3 }),
});
const tickOp = fc.record({
  kind: fc.constant("tick" as const),
  ms: fc.integer({ min: 1, max: 30 }),
});
const ops = fc.array(fc.oneof(publishOp, publishOp, takeOp, tickOp), { maxLength: 80 });

const config = fc.record({
  broadcastIntervalMs: fc.constantFrom(0, 10),
  maxBucketsPerBatch: fc.integer({ min: 1, max: 6 }),
  mergeAfterPendingBuckets: fc.integer({ min: 1, max: 20 }),
});

describe("property", () => {
  test("after draining, each subscriber's last-seen value per key is the last published value, and no value ever follows a newer one", async () => {
    await fc.assert(
      fc.asyncProperty(config, ops, async (options, operations) => {
        const time = new FakeTime();
        const hub = new Hub({ ...options, now: time.now, timers: time.timers }).start();
        const subscriptions = NAMESPACES.flatMap((namespace) =>
          Array.from({ length: SUBSCRIBERS }, () => hub.subscribe(namespace)),
        );
        const seen = subscriptions.map(() => new Map<string, number>());
        // Every published bucket is stamped with a rising sequence number, so
        // a subscriber receiving an older value after a newer one shows.
        const stamps = subscriptions.map(() => new Map<string, number>());
        let sequence = 0;
        const record = (index: number, batch: Batch) => {
          for (const b of batch.buckets) {
            const key = `${batch.seed}:${b.rowId}:${b.colId}`;
            expect(b.lastUpdateTimeMs).toBeGreaterThanOrEqual(stamps[index]?.get(key) ?? 0);
            stamps[index]?.set(key, b.lastUpdateTimeMs);
          }
        };
        const published = new Map<string, number>();
        const take = async (index: number, count: number) => {
          const subscription = subscriptions[index];
          for (let i = 0; i < count && subscription && subscription.pendingBuckets > 0; i++) {
            const result = await subscription.next();
            if (result.value) {
              record(index, result.value);
              for (const [key, prob] of latestByKey([result.value])) seen[index]?.set(key, prob);
            }
          }
        };

        for (const op of operations) {
          if (op.kind === "publish") {
            const buckets: BucketState[] = op.buckets.map((b) => ({
              ...b,
              lastUpdateTimeMs: ++sequence,
            }));
            hub.publish(op.namespace, op.seed, buckets);
            for (const [key, prob] of latestByKey([{ ...op, buckets }])) published.set(key, prob);
          } else if (op.kind === "take") {
            await take(op.subscriber, op.count);
          } else {
            time.tick(op.ms);
          }
        }
        time.tick(options.broadcastIntervalMs);
        for (const [index, subscription] of subscriptions.entries()) {
          expect(subscription.closeReason).toBeUndefined();
          const rest = await drain(subscription);
          for (const batch of rest) record(index, batch);
          for (const [key, prob] of latestByKey(rest)) seen[index]?.set(key, prob);
          const expected = new Map(
            [...published].filter(([key]) => key.startsWith(`${subscription.namespace}/`)),
          );
          expect(seen[index]).toEqual(expected);
        }
        hub.stop();
      }),
      { numRuns: 300 },
    );
  });
});
