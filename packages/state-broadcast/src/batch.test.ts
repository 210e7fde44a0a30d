import { afterEach, describe, expect, test } from "vitest";
import { bucket, drain, SEED, startHub, stopHubs } from "../test/helpers.js";
import type { Batch } from "./index.js";

afterEach(stopHubs);

describe("encode once", () => {
  test("the encoder runs once per batch whatever the subscriber count, and all get the same bytes", async () => {
    let calls = 0;
    const { hub } = startHub({
      encode: (batch: Batch) => {
        calls++;
        return new Uint8Array(batch.buckets.length);
      },
    });
    const subscriptions = Array.from({ length: 5 }, () => hub.subscribe("ns"));
    hub.publish("ns", SEED, [bucket(0, 1, 0.1)]);
    hub.publish("ns", SEED, [bucket(0, 2, 0.1), bucket(0, 3, 0.1)]);

    const bytes = await Promise.all(
      subscriptions.map(async (s) => (await drain(s)).map((batch) => hub.encode(batch))),
    );
    expect(calls).toBe(2);
    for (const perSubscriber of bytes) {
      expect(perSubscriber[0]).toBe(bytes[0]?.[0]);
      expect(perSubscriber[1]).toBe(bytes[0]?.[1]);
    }
  });

  test("encode() without an encoder throws no_encoder", () => {
    const { hub } = startHub();
    expect(() => hub.encode({ namespace: "", seed: SEED, buckets: [] })).toThrow(
      expect.objectContaining({ code: "no_encoder" }),
    );
  });
});
