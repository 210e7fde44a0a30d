// Properties of the aggregation (docs/design.md §3), checked with fast-check over
// generated deltas, clocks and windows, on any store.

import type { BucketState } from "@fair/state-store";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { seed0, t0, update } from "./fixtures.js";
import type { ConformanceContext } from "./suite.js";

const rate = fc.double({ min: 0, max: 0.05, noNaN: true });
const timeMs = fc.integer({ min: 0, max: 10_000 }).map((dt) => t0 + dt);

export function describeProperties(ctx: ConformanceContext): void {
  const numRuns = ctx.propertyRuns;

  describe("aggregation properties", () => {
    test("the result does not depend on arrival order when nothing clamps", async () => {
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
      await fc.assert(
        fc
          .asyncProperty(scenario, async ([lambda, deltas, shuffled]) => {
            const { store } = await ctx.make({ decayRatePerSecond: lambda });
            const results: (BucketState | undefined)[] = [];
            // Each order in its own namespace: isolated key spaces of one store.
            for (const [i, order] of [deltas, shuffled].entries()) {
              const ns = store.namespace(`order-${i}`);
              await ns.applyDelta(seed0, 0, 0, 0.5, t0);
              for (const [a, ts] of order) await ns.applyDelta(seed0, 0, 0, a, ts);
              results.push((await ns.getSeed(seed0))[0]);
            }
            const batchedNs = store.namespace("batched");
            await batchedNs.applyDelta(seed0, 0, 0, 0.5, t0);
            const batched = await batchedNs.applyUpdate(
              update(
                seed0,
                shuffled.map(([a, ts]) => [0, 0, a, ts]),
              ),
            );
            // The closed form: every adjustment decayed to the latest time.
            const last = Math.max(t0, ...deltas.map(([, ts]) => ts));
            const decay = (ts: number) => Math.exp((-lambda * (last - ts)) / 1000);
            const expected = deltas.reduce((p, [a, ts]) => p + a * decay(ts), 0.5 * decay(t0));
            for (const bucket of [...results, batched.buckets[0]]) {
              expect(bucket?.lastUpdateTimeMs).toBe(last);
              expect(bucket?.prob).toBeCloseTo(expected, 12);
            }
          })
          .afterEach(() => ctx.disposeAll()),
        { numRuns },
      );
    });

    test("probabilities stay within [0, 1] whatever arrives", async () => {
      const delta = fc.tuple(
        fc.integer({ min: 0, max: 2 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        timeMs,
      );
      await fc.assert(
        fc
          .asyncProperty(rate, fc.array(delta, { maxLength: 40 }), async (lambda, deltas) => {
            const { store } = await ctx.make({ decayRatePerSecond: lambda });
            const { buckets } = await store.applyUpdate(
              update(
                seed0,
                deltas.map(([col, a, ts]) => [0, col, a, ts]),
              ),
            );
            const held = await store.getSeed(seed0);
            for (const b of [...buckets, ...held]) {
              expect(b.prob).toBeGreaterThanOrEqual(0);
              expect(b.prob).toBeLessThanOrEqual(1);
            }
            for (const b of held) expect(b.prob).toBeGreaterThan(0);
          })
          .afterEach(() => ctx.disposeAll()),
        { numRuns },
      );
    });

    test("a held bucket's timestamp never goes backwards", async () => {
      const delta = fc.tuple(
        fc.integer({ min: 0, max: 3 }),
        fc.double({ min: -0.3, max: 0.3, noNaN: true }),
        timeMs,
      );
      await fc.assert(
        fc
          .asyncProperty(rate, fc.array(delta, { maxLength: 60 }), async (lambda, deltas) => {
            const { store } = await ctx.make({ decayRatePerSecond: lambda });
            const seen = new Map<number, BucketState>();
            for (const [col, a, ts] of deltas) {
              const { bucket } = await store.applyDelta(seed0, 0, col, a, ts);
              const before = seen.get(col);
              // A bucket at 0 is the default bucket again, so only a bucket
              // still held must keep its time.
              if (before !== undefined && before.prob > 0) {
                expect(bucket?.lastUpdateTimeMs).toBeGreaterThanOrEqual(before.lastUpdateTimeMs);
              }
              if (bucket !== undefined) seen.set(col, bucket);
            }
          })
          .afterEach(() => ctx.disposeAll()),
        { numRuns },
      );
    });

    test("fed one tracker's outcomes in time order, the store is that tracker's FAIR bucket", async () => {
      const outcome = fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 15_000 }));
      await fc.assert(
        fc
          .asyncProperty(
            fc.double({ min: 0, max: 0.2, noNaN: true }),
            fc.double({ min: 0.001, max: 0.5, noNaN: true }),
            fc.double({ min: 0.0001, max: 0.2, noNaN: true }),
            fc.array(outcome, { minLength: 1, maxLength: 50 }),
            fc.boolean(),
            async (lambda, pi, pd, outcomes, batched) => {
              const { store, clock } = await ctx.make({ decayRatePerSecond: lambda });
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
                const [bucket] = (await store.applyUpdate(update(seed0, deltas))).buckets;
                expect(bucket?.prob ?? 0).toBeCloseTo(final?.prob ?? 0, 12);
                if (bucket !== undefined) {
                  expect(bucket.lastUpdateTimeMs).toBe(final?.lastUpdateTimeMs);
                }
              } else {
                for (const [i, [row, col, a, ts]] of deltas.entries()) {
                  const { bucket } = await store.applyDelta(seed0, row, col, a, ts);
                  expect(bucket?.prob).toBeCloseTo(reference[i]?.prob ?? Number.NaN, 12);
                  expect(bucket?.lastUpdateTimeMs).toBe(reference[i]?.lastUpdateTimeMs);
                }
              }
            },
          )
          .afterEach(() => ctx.disposeAll()),
        { numRuns },
      );
    });
  });
}
