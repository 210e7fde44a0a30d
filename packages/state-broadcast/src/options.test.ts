import { FakeTime } from "@fair/testing";
import { describe, expect, test } from "vitest";
import { bucket, drain } from "../test/helpers.js";
import { BroadcastError, defaultHubOptions, Hub, type HubOptions } from "./index.js";

describe("options", () => {
  test("defaults: immediate mode, 1024-bucket batches, merging after 8192, 262144 keys, 10 s stall", () => {
    expect(defaultHubOptions).toMatchObject({
      broadcastIntervalMs: 0,
      maxBucketsPerBatch: 1024,
      mergeAfterPendingBuckets: 8192,
      maxPendingKeysPerSubscriber: 262_144,
      maxStallMs: 10_000,
    });
    expect(Object.isFrozen(defaultHubOptions)).toBe(true);
    new Hub().stop();
  });

  test.each<[string, Partial<Record<keyof HubOptions, unknown>>]>([
    ["broadcastIntervalMs", { broadcastIntervalMs: -1 }],
    ["broadcastIntervalMs", { broadcastIntervalMs: Number.NaN }],
    ["maxBucketsPerBatch", { maxBucketsPerBatch: 0 }],
    ["maxBucketsPerBatch", { maxBucketsPerBatch: 1.5 }],
    ["mergeAfterPendingBuckets", { mergeAfterPendingBuckets: "8" }],
    ["maxPendingKeysPerSubscriber", { maxPendingKeysPerSubscriber: Number.POSITIVE_INFINITY }],
    ["maxStallMs", { maxStallMs: 0 }],
    ["now", { now: 5 }],
    ["timers", { timers: { setInterval: () => 1 } }],
    ["encode", { encode: "json" }],
    ["signal", { signal: {} }],
  ])("a bad %s is refused with invalid_option, naming the field", (field, input) => {
    let error: unknown;
    try {
      new Hub(input as Partial<HubOptions>);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BroadcastError);
    expect(error).toMatchObject({ code: "invalid_option" });
    expect((error as Error).message).toContain(`HubOptions.${field}`);
  });

  test("a field given as undefined takes its default", () => {
    const hub = new Hub({ maxBucketsPerBatch: undefined } as unknown as Partial<HubOptions>);
    expect(hub.state).toBe("idle");
  });

  test("the backlog merges no later than maxPendingKeysPerSubscriber, even with a larger mergeAfterPendingBuckets", async () => {
    const time = new FakeTime();
    const hub = new Hub({
      now: time.now,
      timers: time.timers,
      mergeAfterPendingBuckets: 1_000,
      maxPendingKeysPerSubscriber: 4,
    }).start();
    const slow = hub.subscribe("ns");
    // Ten updates of two keys: merged, so within the key limit and not closed.
    for (let i = 0; i < 10; i++) hub.publish("ns", 1n, [bucket(0, i % 2, i / 10)]);
    expect(slow.closeReason).toBeUndefined();
    expect(await drain(slow)).toHaveLength(1);
    hub.stop();
  });
});
