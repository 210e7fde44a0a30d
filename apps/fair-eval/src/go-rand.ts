// Go's math/rand v1 generator (the Mitchell–Reeds additive lagged Fibonacci source behind
// rand.New(rand.NewSource(seed)) and the seeded package-global functions), rebuilt from
// docs/fair-spec.md §13.7 so that the evaluation draws exactly what the Go harness draws. Each 63-bit
// value is two uint32 limbs: the generator only adds, so no BigInt is needed after seeding.
import { rngCooked } from "./go-rand-cooked.js";

const length = 607;
const tap = 273;
const modulus = 2 ** 31 - 1;
const two32 = 2 ** 32;
const two63 = 2 ** 63;

const cookedHigh = Uint32Array.from(rngCooked, (value) => Number(value >> 32n));
const cookedLow = Uint32Array.from(rngCooked, (value) => Number(value & 0xffff_ffffn));

// x ← 48271·x mod (2^31 − 1), by Schrage's method as Go's seedrand does.
function seedrand(x: number): number {
  const hi = Math.trunc(x / 44488);
  const lo = x % 44488;
  const next = 48271 * lo - 3399 * hi;
  return next < 0 ? next + modulus : next;
}

/** A Go `*rand.Rand` over `rand.NewSource(seed)`: the same stream of values as Go 1.x. */
export class GoRand {
  readonly #high = new Uint32Array(length);
  readonly #low = new Uint32Array(length);
  #tap = 0;
  #feed = length - tap;

  /** Go's `rand.NewSource(seed)`; `seed` is an int64 that fits a JS safe integer. */
  constructor(seed: number) {
    let x = seed % modulus;
    if (x < 0) x += modulus;
    if (x === 0) x = 89482311;
    for (let i = -20; i < length; i++) {
      x = seedrand(x);
      if (i < 0) continue;
      // u = x<<40 ^ x'<<20 ^ x'' ^ cooked[i], kept to 63 bits.
      let high = (x << 8) >>> 0;
      x = seedrand(x);
      let low = (x << 20) >>> 0;
      high ^= x >>> 12;
      x = seedrand(x);
      low ^= x;
      this.#high[i] = (high ^ (cookedHigh[i] as number)) & 0x7fff_ffff;
      this.#low[i] = (low ^ (cookedLow[i] as number)) >>> 0;
    }
  }

  /** Advances the generator and returns the new value's high limb (31 bits); the low is in `#lastLow`. */
  #next(): number {
    if (--this.#tap < 0) this.#tap += length;
    if (--this.#feed < 0) this.#feed += length;
    const feed = this.#feed;
    const low = (this.#low[feed] as number) + (this.#low[this.#tap] as number);
    const carry = low >= two32 ? 1 : 0;
    const high =
      ((this.#high[feed] as number) + (this.#high[this.#tap] as number) + carry) & 0x7fff_ffff;
    this.#high[feed] = high;
    this.#low[feed] = low >>> 0;
    this.#lastLow = low >>> 0;
    return high;
  }

  #lastLow = 0;

  /** Go's `Int63()`, exactly, as a bigint. */
  int63(): bigint {
    const high = this.#next();
    return (BigInt(high) << 32n) | BigInt(this.#lastLow);
  }

  /** Go's `Uint32()`: `uint32(Int63() >> 31)`. */
  uint32(): number {
    const high = this.#next();
    return ((high << 1) | (this.#lastLow >>> 31)) >>> 0;
  }

  /** Go's `Float64()`: `Int63() / 2^63`, drawn again in the (~2^-53) case it rounds to 1. */
  float64(): number {
    for (;;) {
      const high = this.#next();
      // One rounding of the exact 63-bit integer, as Go's float64() conversion does.
      const f = (high * two32 + this.#lastLow) / two63;
      if (f !== 1) return f;
    }
  }
}
