// RedisStore against InMemoryStore over random batches of updates and
// offers: repeated buckets within a batch, late and clamped timestamps,
// deltas and probabilities at and next to 0 and 1, the smallest doubles,
// −0, columns up to 2^32 − 1, and clocks next to 2^53. The scripts take the
// entries packed as doubles and store and publish doubles (scripts.ts), so
// nothing may round on the way.
//
// Without decay every result is exact arithmetic on the inputs, and both
// stores must answer bit for bit. With decay they may not: Lua's math.exp
// is the C library's and JavaScript's Math.exp is V8's own, and the two
// differ in the last bit for some arguments (exp(−0.30000000000000004):
// 0.74081822068171788 in Redis, …777 in Node). There the buckets must agree
// to 1e−12, timestamps exactly.
import { create } from "@bufbuild/protobuf";
import { DeltaUpdateSchema, StateOfferSchema } from "@fair/state-proto";
import { type BucketState, InMemoryStore } from "@fair/state-store";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import fc from "fast-check";
import { describe, expect, inject, test } from "vitest";
import { RedisStore } from "./index.js";

const url = inject("redisUrl");
const windowMs = 300_000;
const maxRows = 4;
const maxCols = 2 ** 32;

/** `[row, col, value, timestamp]` */
type Entry = [number, number, number, number];
type Step = { kind: "update" | "offer"; entries: Entry[] };

function sorted(buckets: readonly BucketState[]): BucketState[] {
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

/** A clock start: one second into a window near `t0`, or just below 2^53. */
const clockStart = fc.constantFrom(1_764_136_801_000, 2 ** 53 - 1_000_000).map((t) => {
  const seed = Math.floor(t / windowMs) * windowMs;
  return { seed: BigInt(seed), now: seed + 1_000 };
});

const nearEdges = [0, -0, 1, 1 - 2 ** -53, 2 ** -53, 5e-324, 2.2250738585072014e-308, 0.05, 0.1];
const delta = fc.oneof(
  fc.double({ min: -1, max: 1, noNaN: true }),
  fc.constantFrom(...nearEdges, ...nearEdges.map((x) => -x), -1, -0.01),
);
const prob = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...nearEdges));
/** Few rows and columns, so buckets repeat within and across batches; and the largest column. */
const bucket = fc.tuple(
  fc.integer({ min: 0, max: maxRows - 1 }),
  fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(maxCols - 1)),
);
/** Offsets from the clock: late (even before the window), on time, and past the skew (clamped). */
const offset = fc.oneof(
  fc.integer({ min: -2_000, max: 2_000 }),
  fc.integer({ min: -10_000_000, max: 100_000 }),
  fc.constantFrom(0, 30_000, 30_001, 10_000_000),
);

function steps(): fc.Arbitrary<Step[]> {
  const entries = (value: fc.Arbitrary<number>) =>
    fc.array(fc.tuple(bucket, value, offset), { minLength: 1, maxLength: 24 });
  const step = fc.oneof(
    { weight: 3, arbitrary: entries(delta).map((list) => ({ kind: "update" as const, list })) },
    { weight: 1, arbitrary: entries(prob).map((list) => ({ kind: "offer" as const, list })) },
  );
  return fc.array(step, { minLength: 1, maxLength: 6 }).map((list) =>
    list.map(({ kind, list: raw }) => ({
      kind,
      entries: raw.map(([[row, col], value, ts]): Entry => [row, col, value, ts]),
    })),
  );
}

type Compare = (actual: BucketState[], expected: BucketState[]) => void;

/** Bit for bit: toEqual compares numbers with Object.is (−0 apart from 0). */
const exactly: Compare = (actual, expected) => expect(sorted(actual)).toEqual(sorted(expected));

/**
 * To 1e−12, by bucket (a missing bucket is 0), timestamps exactly where
 * both hold more than that: a last-bit difference in a decay factor may
 * leave a bucket at a tiny value in one store and at 0 in the other.
 */
const closely: Compare = (actual, expected) => {
  const byKey = (list: BucketState[]) => new Map(list.map((b) => [`${b.rowId}:${b.colId}`, b]));
  const a = byKey(actual);
  const e = byKey(expected);
  for (const key of new Set([...a.keys(), ...e.keys()])) {
    const x = a.get(key);
    const y = e.get(key);
    expect(x?.prob ?? 0, key).toBeCloseTo(y?.prob ?? 0, 12);
    if (x !== undefined && y !== undefined && x.prob > 1e-12 && y.prob > 1e-12) {
      expect(x.lastUpdateTimeMs, key).toBe(y.lastUpdateTimeMs);
    }
  }
};

async function compareStores(
  { seed, now }: { seed: bigint; now: number },
  decayRatePerSecond: number,
  list: Step[],
  compare: Compare,
) {
  const options = { now: () => now, decayRatePerSecond, maxRows, maxCols };
  const memory = new InMemoryStore(options);
  const keyPrefix = uniqueKeyPrefix("parity");
  const redis = new RedisStore({ ...options, url, keyPrefix });
  try {
    redis.start();
    await redis.whenReady();
    for (const { kind, entries } of list) {
      // Timestamps are offsets from the clock, within [0, 2^53 − 1].
      const buckets = entries.map(([row, col, value, dt]) => ({
        rowId: BigInt(row),
        colId: BigInt(col),
        value,
        lastUpdateTimeMs: BigInt(Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, now + dt))),
      }));
      const [expected, actual] =
        kind === "update"
          ? await (async () => {
              const update = create(DeltaUpdateSchema, {
                seed,
                deltas: buckets.map(({ value, ...b }) => ({ ...b, deltaProb: value })),
              });
              return [memory.applyUpdate(update), await redis.applyUpdate(update)] as const;
            })()
          : await (async () => {
              const offer = create(StateOfferSchema, {
                seed,
                buckets: buckets.map(({ value, ...b }) => ({ ...b, prob: value })),
              });
              return [memory.applyOffer(offer), await redis.applyOffer(offer)] as const;
            })();
      const { buckets: got, ...rest } = actual;
      const { buckets: want, ...wanted } = expected;
      expect(rest).toEqual(wanted);
      compare(got, want);
      compare(await redis.getSeed(seed), memory.getSeed(seed));
    }
  } finally {
    memory.stop();
    await redis.stop();
    await deleteKeys(url, keyPrefix);
  }
}

describe.skipIf(url === "")("RedisStore matches InMemoryStore over random batches", () => {
  test("bit for bit without decay", async () => {
    await fc.assert(
      fc.asyncProperty(clockStart, steps(), (start, list) =>
        compareStores(start, 0, list, exactly),
      ),
      { numRuns: 40 },
    );
  });

  test("to 1e-12 with decay, timestamps exactly", async () => {
    await fc.assert(
      fc.asyncProperty(
        clockStart,
        fc.constantFrom(0.01, 0.7, 1_000),
        steps(),
        (start, decayRatePerSecond, list) =>
          compareStores(start, decayRatePerSecond, list, closely),
      ),
      { numRuns: 25 },
    );
  });
});
