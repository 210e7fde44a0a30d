// MurmurHash3_x64_128 as github.com/spaolacci/murmur3 v1.1.0 computes it, returning only the
// first 64-bit word h1, which is what Go's `Sum64` returns (docs/fair-spec.md §4.1). A 64-bit value is
// a pair of int32 limbs (high, low) held in locals; the helpers are pure functions of them, so
// V8 keeps everything in registers. bench/main.ts measures this against a BigInt rendering,
// which is several times slower: it runs twice per register and twice per report.

/** The last hash's h1 as `[low 32 bits, high 32 bits]`, written by {@link murmur3Sum64}. */
export const sum64Out = new Uint32Array(2);

// Constants as (high, low) limbs.
const c1h = 0x87c37b91 | 0;
const c1l = 0x114253d5 | 0;
const c2h = 0x4cf5ad43 | 0;
const c2l = 0x2745937f | 0;
const f1h = 0xff51afd7 | 0;
const f1l = 0xed558ccd | 0;
const f2h = 0xc4ceb9fe | 0;
const f2l = 0x1a85ec53 | 0;

/**
 * Hashes `data[0, length)` with `seed` (a uint32, zero-extended to 64 bits as Go does) and
 * writes h1 into {@link sum64Out}. Returns h1's low 32 bits, Go's `hash1 = uint32(h)`.
 */
export function murmur3Sum64(data: Uint8Array, length: number, seed: number): number {
  let h1h = 0;
  let h1l = seed | 0;
  let h2h = 0;
  let h2l = seed | 0;
  let th: number;
  let tl: number;
  const blocks = length - (length % 16);
  for (let i = 0; i < blocks; i += 16) {
    // k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1
    let kh = word(data, i + 4);
    let kl = word(data, i);
    th = mulHigh(kh, kl, c1h, c1l);
    tl = Math.imul(kl, c1l);
    kh = (th << 31) | (tl >>> 1);
    kl = (tl << 31) | (th >>> 1);
    h1h ^= mulHigh(kh, kl, c2h, c2l);
    h1l ^= Math.imul(kl, c2l);
    // h1 = rotl(h1, 27) + h2; h1 = h1 * 5 + 0x52dce729
    th = (h1h << 27) | (h1l >>> 5);
    tl = (h1l << 27) | (h1h >>> 5);
    h1h = addHigh(th, tl, h2h, h2l);
    h1l = (tl + h2l) | 0;
    th = mulHigh(h1h, h1l, 0, 5);
    tl = Math.imul(h1l, 5);
    h1h = addHigh(th, tl, 0, 0x52dce729);
    h1l = (tl + 0x52dce729) | 0;
    // k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2
    kh = word(data, i + 12);
    kl = word(data, i + 8);
    th = mulHigh(kh, kl, c2h, c2l);
    tl = Math.imul(kl, c2l);
    kh = (tl << 1) | (th >>> 31);
    kl = (th << 1) | (tl >>> 31);
    h2h ^= mulHigh(kh, kl, c1h, c1l);
    h2l ^= Math.imul(kl, c1l);
    // h2 = rotl(h2, 31) + h1; h2 = h2 * 5 + 0x38495ab5
    th = (h2h << 31) | (h2l >>> 1);
    tl = (h2l << 31) | (h2h >>> 1);
    h2h = addHigh(th, tl, h1h, h1l);
    h2l = (tl + h1l) | 0;
    th = mulHigh(h2h, h2l, 0, 5);
    tl = Math.imul(h2l, 5);
    h2h = addHigh(th, tl, 0, 0x38495ab5);
    h2l = (tl + 0x38495ab5) | 0;
  }
  const tail = length - blocks;
  if (tail > 8) {
    let kh = 0;
    let kl = 0;
    for (let j = tail - 1; j >= 8; j--) {
      const byte = data[blocks + j] as number;
      if (j >= 12) kh |= byte << (8 * (j - 12));
      else kl |= byte << (8 * (j - 8));
    }
    th = mulHigh(kh, kl, c2h, c2l);
    tl = Math.imul(kl, c2l);
    kh = (tl << 1) | (th >>> 31);
    kl = (th << 1) | (tl >>> 31);
    h2h ^= mulHigh(kh, kl, c1h, c1l);
    h2l ^= Math.imul(kl, c1l);
  }
  if (tail > 0) {
    let kh = 0;
    let kl = 0;
    for (let j = Math.min(tail, 8) - 1; j >= 0; j--) {
      const byte = data[blocks + j] as number;
      if (j >= 4) kh |= byte << (8 * (j - 4));
      else kl |= byte << (8 * j);
    }
    th = mulHigh(kh, kl, c1h, c1l);
    tl = Math.imul(kl, c1l);
    kh = (th << 31) | (tl >>> 1);
    kl = (tl << 31) | (th >>> 1);
    h1h ^= mulHigh(kh, kl, c2h, c2l);
    h1l ^= Math.imul(kl, c2l);
  }
  // The length is below 2^32 (it indexes a typed array), so it only touches the low limbs.
  h1l ^= length;
  h2l ^= length;
  // h1 += h2; h2 += h1
  h1h = addHigh(h1h, h1l, h2h, h2l);
  h1l = (h1l + h2l) | 0;
  h2h = addHigh(h2h, h2l, h1h, h1l);
  h2l = (h2l + h1l) | 0;
  // fmix64 both: k ^= k >>> 33 touches only the low limb, which gets the high limb >>> 1.
  h1l ^= h1h >>> 1;
  th = mulHigh(h1h, h1l, f1h, f1l);
  tl = Math.imul(h1l, f1l);
  tl ^= th >>> 1;
  h1h = mulHigh(th, tl, f2h, f2l);
  h1l = Math.imul(tl, f2l) ^ (h1h >>> 1);
  h2l ^= h2h >>> 1;
  th = mulHigh(h2h, h2l, f1h, f1l);
  tl = Math.imul(h2l, f1l);
  tl ^= th >>> 1;
  h2h = mulHigh(th, tl, f2h, f2l);
  h2l = Math.imul(tl, f2l) ^ (h2h >>> 1);
  // h1 += h2
  const high = addHigh(h1h, h1l, h2h, h2l) >>> 0;
  const low = (h1l + h2l) >>> 0;
  sum64Out[0] = low;
  sum64Out[1] = high;
  return low;
}

/** The little-endian 32 bits at `data[i, i + 4)`. */
function word(data: Uint8Array, i: number): number {
  return (
    (data[i] as number) |
    ((data[i + 1] as number) << 8) |
    ((data[i + 2] as number) << 16) |
    ((data[i + 3] as number) << 24)
  );
}

/** The high limb of a × b mod 2^64; the low limb is `Math.imul(al, bl)`. */
function mulHigh(ah: number, al: number, bh: number, bl: number): number {
  // The high 32 bits of the unsigned al × bl, from 16-bit halves: every partial product
  // is below 2^32, so the arithmetic stays exact.
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const cross = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const high = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (cross >>> 16);
  return (high + Math.imul(ah, bl) + Math.imul(al, bh)) | 0;
}

/** The high limb of a + b mod 2^64; the low limb is `(al + bl) | 0`. */
function addHigh(ah: number, al: number, bh: number, bl: number): number {
  const carry = (al >>> 0) + (bl >>> 0) > 0xffffffff ? 1 : 0;
  return (ah + bh + carry) | 0;
}
