// A distributed tracker's optimistic local update and the State Service's aggregation
// (the real `@fair/state-store`) compute the same bucket, bit for bit: the reason a
// zero-delay shared run decides exactly as one centralized tracker (eval-zero-delay.test.ts).
import type {
  BucketDelta,
  BucketValue,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "@fair/state-client";
import { InMemoryStore } from "@fair/state-store";
import { FakeTime } from "@fair/testing";
import { defaultFairnessTrackerConfig, FairnessTracker, type ResultStats } from "@fair/tracker";
import fc from "fast-check";
import { expect, test } from "vitest";

/** 1-minute windows. */
const windowMs = 60_000;
/** A window start: 2025-11-26T06:00:00Z. */
const t0 = 1_764_136_800_000;

/** A link that records what the tracker sends and never answers a full-state request. */
class RecordingLink implements StateLink {
  readonly status: LinkStatus = "connected";
  readonly sent: { seed: bigint; deltas: readonly BucketDelta[] }[] = [];

  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void {
    this.sent.push({ seed, deltas });
  }

  requestFullState(): Promise<readonly BucketValue[]> {
    return new Promise(() => {});
  }

  /** Never called: this link never reports an epoch change. */
  offerState(): void {}

  subscribe(_listener: StateLinkListener): () => void {
    return () => {};
  }
}

/** A distributed tracker ("checkout", stats on, 1-minute windows) on fake time from t0. */
function distributedTracker(lambda: number): {
  tracker: FairnessTracker;
  time: FakeTime;
  link: RecordingLink;
} {
  const time = new FakeTime(t0);
  const link = new RecordingLink();
  const tracker = new FairnessTracker(
    {
      ...defaultFairnessTrackerConfig(),
      includeStats: true,
      rotationFrequencyMs: windowMs,
      lambda,
      m: 8,
      pi: 0.3,
      pd: 0.1,
    },
    {
      now: time.now,
      timers: time.timers,
      random: () => 0.5,
      distributed: { trackerId: "checkout", link },
    },
  );
  return { tracker, time, link };
}

function statsOf(stats: ResultStats | undefined): ResultStats {
  if (stats === undefined) throw new Error("the decision carries no stats");
  return stats;
}

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
        const { tracker, time, link } = distributedTracker(lambda);
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
          const stats = statsOf(tracker.registerRequest(`c${client}`).stats);
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
