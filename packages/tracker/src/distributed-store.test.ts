// A distributed tracker's optimistic local update and the State Service's aggregation
// (the real `@fair/state-store`) compute the same bucket, bit for bit: the reason a
// zero-delay shared run decides exactly as one centralized tracker.
import { InMemoryStore } from "@fair/state-store";
import fc from "fast-check";
import { expect, test } from "vitest";
import { distributedTracker, windowMs } from "../test/distributed-helpers.js";
import { statsOf } from "../test/helpers.js";

test("after any sequence of outcomes, local buckets equal the store's exactly", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          client: fc.integer({ min: 0, max: 3 }),
          failure: fc.boolean(),
          advanceMs: fc.integer({ min: 0, max: 20_000 }),
        }),
        { maxLength: 80 },
      ),
      fc.constantFrom(0, 0.01, 0.5),
      (outcomes, lambda) => {
        const { tracker, time, link } = distributedTracker({ lambda, m: 8, pi: 0.3, pd: 0.1 });
        const store = new InMemoryStore({ windowMs, decayRatePerSecond: lambda, now: time.now });
        for (const { client, failure, advanceMs } of outcomes) {
          time.tick(advanceMs);
          tracker.reportOutcome(`c${client}`, failure ? "failure" : "success");
          for (const { seed, deltas } of link.sent.splice(0)) {
            for (const d of deltas) {
              store.applyDelta(seed, d.rowId, d.colId, d.deltaProb, d.lastUpdateTimeMs);
            }
          }
        }
        const seed = BigInt(tracker.structureIds.main);
        const held = new Map(store.getSeed(seed).map((b) => [`${b.rowId}:${b.colId}`, b] as const));
        for (let client = 0; client < 4; client++) {
          const stats = statsOf(tracker.registerRequest(`c${client}`));
          stats.bucketIndexes.forEach((colId, rowId) => {
            const bucket = held.get(`${rowId}:${colId}`);
            const expected =
              bucket === undefined
                ? 0
                : bucket.prob *
                  (time.now() > bucket.lastUpdateTimeMs
                    ? Math.exp(-(lambda / 1000) * (time.now() - bucket.lastUpdateTimeMs))
                    : 1);
            expect(stats.bucketProbabilities[rowId]).toBe(expected);
          });
        }
      },
    ),
    { numRuns: 200 },
  );
});
