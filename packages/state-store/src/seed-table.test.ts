// SeedTable.sizeAfter repeats apply's arithmetic on a scratch copy so the
// maxBucketsPerSeed check can refuse a batch before touching anything: it
// must agree with what applying the batch really leaves.
import fc from "fast-check";
import { expect, test } from "vitest";
import { SeedTable } from "./seed-table.js";

const delta = fc.record({
  key: fc.integer({ min: 0, max: 11 }),
  // Exact values that cancel out (0.25 − 0.25) are drawn often.
  a: fc.oneof(fc.constantFrom(-1, -0.25, 0, 0.25, 1), fc.double({ min: -1, max: 1, noNaN: true })),
  ts: fc.integer({ min: 0, max: 2_000 }),
});

function columns(deltas: readonly { key: number; a: number; ts: number }[]) {
  const keys = Float64Array.from(deltas, (d) => d.key);
  const values = Float64Array.from(deltas, (d) => d.a);
  const times = Float64Array.from(deltas, (d) => d.ts);
  return { keys, values, times, count: deltas.length };
}

test("sizeAfter is the size applying the batch leaves, and changes nothing", () => {
  fc.assert(
    fc.property(
      fc.array(delta, { maxLength: 20 }),
      fc.array(delta, { maxLength: 20 }),
      fc.constantFrom(0, 0.01, 5),
      fc.integer({ min: 0, max: 2_500 }),
      (before, batch, lambda, latest) => {
        const decayPerMs = lambda / 1000;
        const table = new SeedTable();
        table.beginBatch();
        for (const d of before) table.apply(d.key, d.a, d.ts, decayPerMs);
        table.endBatch(100);
        const sizeBefore = table.size;
        const { keys, values, times, count } = columns(batch);
        const predicted = table.sizeAfter(keys, values, times, count, latest, decayPerMs);
        expect(table.size).toBe(sizeBefore);
        table.beginBatch();
        for (let i = 0; i < count; i++) {
          table.apply(
            keys[i] as number,
            values[i] as number,
            Math.min(times[i] as number, latest),
            decayPerMs,
          );
        }
        table.endBatch(100);
        expect(predicted).toBe(table.size);
      },
    ),
    { numRuns: 500 },
  );
});
