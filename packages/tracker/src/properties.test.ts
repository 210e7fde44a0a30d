// docs/fair-spec.md §14 properties 41–46, which no mutant covers, checked over generated operation
// sequences. Property 46's exact reproductions are in structure-trace.test.ts (§13.5) and
// apps/fair-eval/test/eval-golden.test.ts (§13.8).

import { FakeTime } from "@fair/testing";
import fc from "fast-check";
import { expect, test } from "vitest";
import { bucketsOf, localTracker, statsOf } from "../test/helpers.js";
import { countingRandom, seedSequence } from "../test/sources.js";
import {
  defaultFairnessTrackerConfig,
  defaultTrackerOptions,
  FairnessTracker,
  FairnessTrackerBuilder,
  type FairnessTrackerConfig,
} from "./index.js";

type Op = { kind: "register" | "success" | "failure" | "rotate"; id: number; advanceMs: number };

const ops = fc.array(
  fc.record({
    kind: fc.constantFrom("register", "success", "failure", "rotate"),
    id: fc.integer({ min: 0, max: 5 }),
    advanceMs: fc.integer({ min: 0, max: 5000 }),
  }),
  { maxLength: 60 },
) as fc.Arbitrary<Op[]>;

function run(tracker: FairnessTracker, time: FakeTime, sequence: Op[]): unknown[] {
  const seen: unknown[] = [];
  for (const op of sequence) {
    time.tick(op.advanceMs);
    const id = `client-${op.id}`;
    if (op.kind === "register") seen.push(tracker.registerRequest(id));
    else if (op.kind === "rotate") tracker.rotate();
    else tracker.reportOutcome(id, op.kind);
  }
  return seen;
}

test("41: exactly two draws per register and none per report, whatever the sequence", () => {
  fc.assert(
    fc.property(ops, (sequence) => {
      const draws = countingRandom(0.3);
      const { tracker, time } = localTracker({}, { random: draws.random });
      run(tracker, time, sequence);
      expect(draws.calls).toBe(2 * sequence.filter((op) => op.kind === "register").length);
    }),
  );
});

test("42: every structure gets its own seed — one draw each at start and per rotation, and the promoted secondary hashes with its own", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 0xffff_ffff }), { minLength: 4, maxLength: 4 }),
      (seeds) => {
        const calls: number[] = [];
        const source = seedSequence(...seeds);
        const { tracker } = localTracker(
          { m: 65_521 },
          {
            options: {
              murmurSeed: () => {
                const seed = source();
                calls.push(seed);
                return seed;
              },
            },
          },
        );
        const under = (seed: number) =>
          statsOf(localTracker({ m: 65_521 }, { seeds: [seed, 0] }).tracker.registerRequest("x"))
            .bucketIndexes;
        expect(statsOf(tracker.registerRequest("x")).bucketIndexes).toEqual(
          under(seeds[0] as number),
        );
        tracker.rotate();
        expect(statsOf(tracker.registerRequest("x")).bucketIndexes).toEqual(
          under(seeds[1] as number),
        );
        tracker.rotate();
        expect(statsOf(tracker.registerRequest("x")).bucketIndexes).toEqual(
          under(seeds[2] as number),
        );
        expect(calls).toEqual(seeds.slice(0, 4));
      },
    ),
    { numRuns: 50 },
  );
  const drawn = new Set(Array.from({ length: 1000 }, () => defaultTrackerOptions.murmurSeed()));
  expect(drawn.size).toBeGreaterThan(990);
  for (const seed of drawn) expect(seed >>> 0).toBe(seed);
});

test("43: the decision is random() <= pFinal — a draw equal to pFinal throttles, pFinal 1 always throttles", () => {
  const fixed = (p: number, draw: number) =>
    localTracker(
      { finalProbabilityFunction: () => p },
      { random: () => draw },
    ).tracker.registerRequest("a");
  expect(fixed(0.5, 0.5).shouldThrottle).toBe(true);
  expect(fixed(0.5, 0.5000000000000001).shouldThrottle).toBe(false);
  expect(fixed(0, 0).shouldThrottle).toBe(true);
  fc.assert(
    fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (draw) => {
      expect(fixed(1, draw).shouldThrottle).toBe(true);
    }),
  );
});

test("44: a clock that steps back never raises p and never wipes it", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 10_000_000 }),
      fc.integer({ min: 0, max: 60_000 }),
      (failures, backMs, forwardMs) => {
        const { tracker, time } = localTracker({ lambda: 0.01 });
        time.tick(10_000_000 + forwardMs);
        for (let i = 0; i < failures; i++) tracker.reportOutcome("a", "failure");
        const before = bucketsOf(tracker, "a");
        time.set(time.now() - backMs);
        const after = bucketsOf(tracker, "a");
        expect(after).toEqual(before);
        expect(after[0]).toBeGreaterThan(0);
      },
    ),
  );
});

test("45: the config is frozen at construction — later changes to the object or the builder change nothing", () => {
  const time = new FakeTime(0);
  const source: { -readonly [K in keyof FairnessTrackerConfig]: FairnessTrackerConfig[K] } = {
    ...defaultFairnessTrackerConfig(),
    includeStats: true,
  };
  const tracker = new FairnessTracker(source, { now: time.now, timers: time.timers });
  source.pi = 0.5;
  source.l = 40;
  tracker.reportOutcome("a", "failure");
  expect(bucketsOf(tracker, "a")).toEqual([0.04, 0.04, 0.04]);
  expect(Object.isFrozen(tracker.config)).toBe(true);

  const builder = new FairnessTrackerBuilder().setIncludeStats(true);
  const built = builder.build({ now: time.now, timers: time.timers });
  builder.setL(30).setPi(0.9).setIncludeStats(false);
  built.reportOutcome("a", "failure");
  expect(statsOf(built.registerRequest("a")).bucketProbabilities).toEqual([0.04, 0.04, 0.04]);
});

test("46: with the seed source, clock and draws injected, two trackers decide identically", () => {
  fc.assert(
    fc.property(ops, fc.integer({ min: 0, max: 0xffff_ffff }), (sequence, seed) => {
      const make = () => {
        let state = seed;
        const random = () => {
          state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
          return state / 2 ** 32;
        };
        return localTracker({}, { seeds: [seed, seed ^ 1], random });
      };
      const a = make();
      const b = make();
      expect(run(a.tracker, a.time, sequence)).toEqual(run(b.tracker, b.time, sequence));
    }),
    { numRuns: 50 },
  );
});
