// Go's math/rand v1 streams (docs/fair-spec.md §13.7), which the evaluation needs to reproduce the Go
// harness count for count.
import { expect, test } from "vitest";
import { GoRand } from "../src/go-rand.js";

test("13.7: rand.New(rand.NewSource(1000)).Float64() three times", () => {
  const rng = new GoRand(1000);
  expect([rng.float64(), rng.float64(), rng.float64()]).toEqual([
    0.68066355113176191, 0.28981398417996873, 0.5357723685986947,
  ]);
});

test("13.7: the first Int63 for seed 1000", () => {
  expect(new GoRand(1000).int63()).toBe(6278013164014963327n);
});

test.each([
  [1000, 2923427691, 1244741583],
  [1001, 901744327, 3042995843],
  [1002, 3283971305, 678860098],
])("13.7: rand.Seed(%i) then Uint32() twice gives the two structure seeds", (seed, a, b) => {
  const rng = new GoRand(seed);
  expect([rng.uint32(), rng.uint32()]).toEqual([a, b]);
});

test("seed 0 is Go's 89482311, and seeds wrap modulo 2^31 − 1 as in Go", () => {
  expect(new GoRand(0).int63()).toBe(new GoRand(89482311).int63());
  expect(new GoRand(2 ** 31 - 1 + 1000).int63()).toBe(new GoRand(1000).int63());
  expect(new GoRand(-1000).int63()).toBe(new GoRand(2 ** 31 - 1 - 1000).int63());
});

test("Int63 stays below 2^63 and Float64 in [0, 1) over a long stream", () => {
  const a = new GoRand(7);
  const b = new GoRand(7);
  for (let i = 0; i < 5000; i++) {
    const big = a.int63();
    expect(big >= 0n && big < 2n ** 63n).toBe(true);
    const f = b.float64();
    expect(f >= 0 && f < 1).toBe(true);
    expect(f).toBe(Number(big) / 2 ** 63);
  }
});
