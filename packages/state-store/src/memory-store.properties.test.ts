// The eviction timer's property, specific to the in-memory store (its
// timer and clock); the contract's properties are in @fair/state-store-conformance.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { makeStore, seed0, windowMs } from "../test/helpers.js";

describe("in-memory eviction", () => {
  test("eviction never removes a live seed, and removes every expired one", () => {
    // The clock lands on, next to, or anywhere between seed boundaries of the
    // horizon, so a seed exactly at the horizon is tried often.
    const offset = fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: 0, max: windowMs - 1 }));
    fc.assert(
      fc.property(
        fc.integer({ min: windowMs, max: 6 * windowMs }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: -1, max: 13 }),
        offset,
        (seedEvictionTtlMs, seedCount, horizonWindows, offsetMs) => {
          const { store, clock, timers } = makeStore({ seedEvictionTtlMs });
          const seeds = Array.from({ length: seedCount }, (_, i) => seed0 + BigInt(i * windowMs));
          for (const seed of seeds) {
            clock.nowMs = Number(seed) + 10;
            store.applyDelta(seed, 0, 0, 0.5, clock.nowMs);
          }
          const horizon = Number(seed0) + horizonWindows * windowMs + offsetMs;
          clock.nowMs = horizon + seedEvictionTtlMs;
          store.start();
          timers.fire();
          store.stop();
          for (const seed of seeds) {
            expect(store.getSeed(seed)).toHaveLength(Number(seed) >= horizon ? 1 : 0);
          }
        },
      ),
    );
  });
});
