// murmur3 x64_128 h1 (docs/fair-spec.md §4.1, §13.1): the 32-bit-limb implementation against the
// spec's vectors and against a straightforward BigInt rendering of the algorithm.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { murmur3Sum64, sum64Out } from "./murmur3.js";

const mask = (1n << 64n) - 1n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & mask;
const fmix = (k: bigint) => {
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & mask;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & mask;
  return k ^ (k >> 33n);
};

/** The algorithm as docs/fair-spec.md §4.1 states it, in BigInt: slow and obviously right. */
function referenceSum64(data: Uint8Array, seed: number): bigint {
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  let h1 = BigInt(seed);
  let h2 = BigInt(seed);
  const le = (from: number, to: number) => {
    let k = 0n;
    for (let i = to - 1; i >= from; i--) k = (k << 8n) | BigInt(data[i] as number);
    return k;
  };
  const blocks = data.length - (data.length % 16);
  for (let i = 0; i < blocks; i += 16) {
    h1 ^= (rotl((le(i, i + 8) * c1) & mask, 31n) * c2) & mask;
    h1 = (((rotl(h1, 27n) + h2) & mask) * 5n + 0x52dce729n) & mask;
    h2 ^= (rotl((le(i + 8, i + 16) * c2) & mask, 33n) * c1) & mask;
    h2 = (((rotl(h2, 31n) + h1) & mask) * 5n + 0x38495ab5n) & mask;
  }
  const tail = data.length - blocks;
  if (tail > 8) h2 ^= (rotl((le(blocks + 8, data.length) * c2) & mask, 33n) * c1) & mask;
  if (tail > 0) {
    h1 ^= (rotl((le(blocks, blocks + Math.min(tail, 8)) * c1) & mask, 31n) * c2) & mask;
  }
  h1 ^= BigInt(data.length);
  h2 ^= BigInt(data.length);
  h1 = (h1 + h2) & mask;
  h2 = (h2 + h1) & mask;
  h1 = fmix(h1);
  h2 = fmix(h2);
  return (h1 + h2) & mask;
}

function sum64(input: string, seed: number): bigint {
  const bytes = new TextEncoder().encode(input);
  const low = murmur3Sum64(bytes, bytes.length, seed);
  return (BigInt(sum64Out[1] as number) << 32n) | BigInt(low);
}

describe("murmur3 Sum64 (x64_128 h1)", () => {
  test.each([
    ["", 0, 0x0000000000000000n, 0, 0],
    ["hello", 0, 0xcbd8a7b341bd9b02n, 1102945026, 3419973555],
    ["hello", 1, 0xa78ddff5adae8d10n, 2913897744, 2811092981],
    ["hello world", 5, 0x6e137e259a04790fn, 2583984399, 1846771237],
    ["hello_world", 0, 0x5da51a1c9ef32c98n, 2666736792, 1571101212],
    ["client_id", 12345, 0x289d617cc9e4f2a3n, 3387224739, 681402748],
    ["steady-000", 0, 0x8a6c24c319a942d4n, 430523092, 2322343107],
    ["aggressive-007", 4294967295, 0x7c4cbe0bbdb733c0n, 3182900160, 2085404171],
  ])("docs/fair-spec.md §13.1: %j with seed %i", (input, seed, expected, hash1, hash2) => {
    expect(sum64(input, seed)).toBe(expected);
    const bytes = new TextEncoder().encode(input);
    expect(murmur3Sum64(bytes, bytes.length, seed)).toBe(hash1);
    expect(sum64Out[1]).toBe(hash2);
  });

  test.each([
    ["hello, world", 42, 0xb91864d797caa956n],
    ["The quick brown fox jumps over the lazy dog.", 1, 0xfb3325171f9744dan],
    ["0123456789abcdef", 7, 0x500ca03648b1f185n],
    ["0123456789abcdefX", 7, 0x58550bbc8514f46dn],
  ])(
    "docs/fair-spec.md §13.1 and the murmur3 repository: %j with seed %i",
    (input, seed, expected) => {
      expect(sum64(input, seed)).toBe(expected);
    },
  );

  test("equals the BigInt rendering of the algorithm for any bytes and seed", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (bytes, seed) => {
          murmur3Sum64(bytes, bytes.length, seed);
          const got = (BigInt(sum64Out[1] as number) << 32n) | BigInt(sum64Out[0] as number);
          expect(got).toBe(referenceSum64(bytes, seed));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("hashes only the first `length` bytes of the buffer", () => {
    const buffer = new TextEncoder().encode("hello world, and more");
    murmur3Sum64(buffer, 11, 5);
    expect(sum64Out[0]).toBe(2583984399);
  });
});
