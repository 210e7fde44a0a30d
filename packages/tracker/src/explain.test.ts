import { describe, expect, test } from "vitest";
import {
  bucketKey,
  decayedTo,
  defaultFairnessTrackerConfig,
  explainClient,
  FairnessTracker,
  hottestBuckets,
  meanFinalProbability,
  type StoredBucket,
  windowSeedOf,
} from "./index.js";

const windowMs = 300_000;
const t0 = 1_764_136_800_000 + 1_000;
const config = {
  ...defaultFairnessTrackerConfig(),
  rotationFrequencyMs: windowMs,
  includeStats: true,
};

/** A distributed tracker (no link: its own state) on a clock the test moves. */
function tracker(finalProbabilityFunction = config.finalProbabilityFunction) {
  const clock = { now: t0 };
  const fair = new FairnessTracker(
    { ...config, finalProbabilityFunction },
    { now: () => clock.now, random: () => 0.5, distributed: { trackerId: "checkout" } },
  );
  return { fair, clock };
}

describe("explainClient", () => {
  test.each([
    ["min", config.finalProbabilityFunction],
    ["mean", meanFinalProbability],
  ])(
    "from the buckets a tracker holds, gives what its registerRequest reports later (%s)",
    (_name, final) => {
      const { fair, clock } = tracker(final);
      for (let i = 0; i < 12; i++) fair.reportOutcome("bad-client", "failure");
      fair.reportOutcome("other", "failure");
      // What a State Service would hold: the tracker's buckets as of t0.
      const at0 = fair.registerRequest("bad-client").stats;
      const held = new Map<string, StoredBucket>();
      at0?.bucketIndexes.forEach((colId, rowId) => {
        held.set(bucketKey(rowId, colId), {
          rowId,
          colId,
          prob: at0.bucketProbabilities[rowId] as number,
          lastUpdateTimeMs: t0,
        });
      });

      clock.now = t0 + 20_000;
      const later = fair.registerRequest("bad-client").stats;
      const seed = windowSeedOf(clock.now, windowMs);
      expect(seed).toBe(BigInt(fair.structureIds.main));
      const explained = explainClient(
        "bad-client",
        { ...config, trackerId: "checkout", finalProbabilityFunction: final },
        seed,
        held,
        clock.now,
      );
      expect(explained.seed).toBe(seed.toString());
      expect(explained.buckets.map((b) => b.colId)).toEqual(later?.bucketIndexes);
      // Bit for bit: the tracker's own decay.
      expect(explained.buckets.map((b) => b.prob)).toEqual(later?.bucketProbabilities);
      expect(explained.finalProbability).toBe(later?.finalProbability);
      expect(explained.buckets.map((b) => b.ageMs)).toEqual([20_000, 20_000, 20_000]);
      fair.close();
    },
  );

  test("a bucket the server does not hold is the default: 0, never updated", () => {
    const explained = explainClient(
      "nobody",
      { ...config, trackerId: "checkout" },
      windowSeedOf(t0, windowMs),
      new Map(),
      t0,
    );
    expect(explained.buckets).toHaveLength(config.l);
    for (const b of explained.buckets) {
      expect(b).toMatchObject({ prob: 0, storedProb: 0, lastUpdateTimeMs: 0, ageMs: null });
    }
    expect(explained.finalProbability).toBe(0);
  });
});

test("hottestBuckets ranks by probability decayed to the instant, not as stored", () => {
  const lambda = 0.01;
  const held: StoredBucket[] = [
    { rowId: 0, colId: 1, prob: 0.9, lastUpdateTimeMs: t0 - 200_000 },
    { rowId: 1, colId: 2, prob: 0.5, lastUpdateTimeMs: t0 },
    { rowId: 2, colId: 3, prob: 0.1, lastUpdateTimeMs: t0 },
  ];
  const top = hottestBuckets(held, 2, t0, lambda);
  expect(top.map((b) => b.colId)).toEqual([2, 1]);
  expect(top[1]?.prob).toBe(decayedTo(held[0] as StoredBucket, t0, lambda));
  expect(top[1]?.prob).toBeLessThan(0.5);
  expect(top[1]).toMatchObject({ storedProb: 0.9, ageMs: 200_000 });
});
