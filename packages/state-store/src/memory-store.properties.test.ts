// Properties of the aggregation (DESIGN §3), checked with fast-check over
// generated deltas, clocks and windows.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { makeStore, seed0, t0, update, windowMs } from "../test/helpers.js";
import type { BucketState } from "./index.js";

const rate = fc.double({ min: 0, max: 0.05, noNaN: true });
const timeMs = fc.integer({ min: 0, max: 10_000 }).map((dt) => t0 + dt);

describe("aggregation properties", () => {
  test("the result does not depend on arrival order when nothing clamps", () => {
    // A base of 0.5 decays at most to 0.5·e^(−0.5) ≈ 0.30 over 10 s at
    // λ ≤ 0.05, and at most 12 deltas of |a| ≤ 0.02 move it by 0.24: no
    // order can reach 0 or 1.
    const delta = fc.tuple(fc.double({ min: -0.02, max: 0.02, noNaN: true }), timeMs);
    const scenario = fc
      .tuple(rate, fc.array(delta, { minLength: 1, maxLength: 12 }))
      .chain(([lambda, deltas]) =>
        fc.tuple(
          fc.constant(lambda),
          fc.constant(deltas),
          fc.shuffledSubarray(deltas, { minLength: deltas.length }),
        ),
      );
    fc.assert(
      fc.property(scenario, ([lambda, deltas, shuffled]) => {
        const results = [deltas, shuffled].map((order) => {
          const { store } = makeStore({ decayRatePerSecond: lambda });
          store.applyDelta(seed0, 0, 0, 0.5, t0);
          for (const [a, ts] of order) store.applyDelta(seed0, 0, 0, a, ts);
          return store.getSeed(seed0)[0];
        });
        const batched = (() => {
          const { store } = makeStore({ decayRatePerSecond: lambda });
          store.applyDelta(seed0, 0, 0, 0.5, t0);
          return store.applyUpdate(
            update(
              seed0,
              shuffled.map(([a, ts]) => [0, 0, a, ts]),
            ),
          ).buckets[0];
        })();
        // The closed form: every adjustment decayed to the latest time.
        const last = Math.max(t0, ...deltas.map(([, ts]) => ts));
        const decay = (ts: number) => Math.exp((-lambda * (last - ts)) / 1000);
        const expected = deltas.reduce((p, [a, ts]) => p + a * decay(ts), 0.5 * decay(t0));
        for (const bucket of [...results, batched]) {
          expect(bucket?.lastUpdateTimeMs).toBe(last);
          expect(bucket?.prob).toBeCloseTo(expected, 12);
        }
      }),
    );
  });

  test("probabilities stay within [0, 1] whatever arrives", () => {
    const delta = fc.tuple(
      fc.integer({ min: 0, max: 2 }),
      fc.double({ min: -1, max: 1, noNaN: true }),
      timeMs,
    );
    fc.assert(
      fc.property(rate, fc.array(delta, { maxLength: 40 }), (lambda, deltas) => {
        const { store } = makeStore({ decayRatePerSecond: lambda });
        const { buckets } = store.applyUpdate(
          update(
            seed0,
            deltas.map(([col, a, ts]) => [0, col, a, ts]),
          ),
        );
        for (const b of [...buckets, ...store.getSeed(seed0)]) {
          expect(b.prob).toBeGreaterThanOrEqual(0);
          expect(b.prob).toBeLessThanOrEqual(1);
        }
        for (const b of store.getSeed(seed0)) expect(b.prob).toBeGreaterThan(0);
      }),
    );
  });

  test("a held bucket's timestamp never goes backwards", () => {
    const delta = fc.tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.double({ min: -0.3, max: 0.3, noNaN: true }),
      timeMs,
    );
    fc.assert(
      fc.property(rate, fc.array(delta, { maxLength: 60 }), (lambda, deltas) => {
        const { store } = makeStore({ decayRatePerSecond: lambda });
        const seen = new Map<number, BucketState>();
        for (const [col, a, ts] of deltas) {
          const { bucket } = store.applyDelta(seed0, 0, col, a, ts);
          const before = seen.get(col);
          // A bucket at 0 is the default bucket again (see the README), so
          // only a bucket still held must keep its time.
          if (before !== undefined && before.prob > 0) {
            expect(bucket?.lastUpdateTimeMs).toBeGreaterThanOrEqual(before.lastUpdateTimeMs);
          }
          if (bucket !== undefined) seen.set(col, bucket);
        }
      }),
    );
  });

  test("fed one tracker's outcomes in time order, the store is that tracker's FAIR bucket", () => {
    const outcome = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 15_000 }));
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 0.2, noNaN: true }),
        fc.double({ min: 0.001, max: 0.5, noNaN: true }),
        fc.double({ min: 0.0001, max: 0.2, noNaN: true }),
        fc.array(outcome, { minLength: 1, maxLength: 50 }),
        fc.boolean(),
        (lambda, pi, pd, outcomes, batched) => {
          const { store, clock } = makeStore({ decayRatePerSecond: lambda });
          let t = t0;
          const deltas: [number, number, number, number][] = [];
          for (const [failed, gapMs] of outcomes) {
            t += gapMs;
            deltas.push([5, 9, failed ? pi : -pd, t]);
          }
          clock.nowMs = t;
          // FAIR's bucket: decay to now, add, clamp, remember the time.
          let p = 0;
          let last = 0;
          const reference = deltas.map(([, , a, ts]) => {
            p = Math.min(1, Math.max(0, p * Math.exp((-lambda * (ts - last)) / 1000) + a));
            last = ts;
            return { prob: p, lastUpdateTimeMs: last };
          });
          const final = reference[reference.length - 1];
          if (batched) {
            const [bucket] = store.applyUpdate(update(seed0, deltas)).buckets;
            expect(bucket?.prob ?? 0).toBeCloseTo(final?.prob ?? 0, 12);
            if (bucket !== undefined) expect(bucket.lastUpdateTimeMs).toBe(final?.lastUpdateTimeMs);
          } else {
            deltas.forEach(([row, col, a, ts], i) => {
              const { bucket } = store.applyDelta(seed0, row, col, a, ts);
              expect(bucket?.prob).toBeCloseTo(reference[i]?.prob ?? Number.NaN, 12);
              expect(bucket?.lastUpdateTimeMs).toBe(reference[i]?.lastUpdateTimeMs);
            });
          }
        },
      ),
    );
  });

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
