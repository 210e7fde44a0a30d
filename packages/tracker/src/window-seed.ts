import { ClientIdEncoder } from "./client-id.js";
import { FairnessTrackerError } from "./errors.js";
import { murmur3Sum64, sum64Out } from "./murmur3.js";

const mask64 = (1n << 64n) - 1n;

/**
 * The murmur seed of a distributed tracker's structure for the window starting at
 * `windowSeedMs` (docs/design.md §3): every instance of tracker `trackerId` derives the same one, so
 * they all map a client to the same buckets, while another tracker's collisions differ.
 *
 * Exactly: `salt = Sum64(utf8(trackerId), 0)` (murmur3 x64_128 h1, as for client ids);
 * `z = windowSeedMs XOR salt` as a uint64; then SplitMix64's finalizer,
 * `z = (z ^ z>>30) · 0xbf58476d1ce4e5b9; z = (z ^ z>>27) · 0x94d049bb133111eb; z ^= z>>31`
 * (mod 2^64), and the low 32 bits of `z`. Implementations in other languages that share a
 * State Service with this one must compute the same.
 *
 * @param windowSeedMs - the window's start, Unix ms (`floor(now / R) · R`), a safe integer ≥ 0
 * @param trackerId - the tracker's id (its salt), the same on every instance
 * @example
 * ```ts
 * windowMurmurSeed(1_764_136_800_000, "checkout"); // a uint32
 * ```
 */
export function windowMurmurSeed(windowSeedMs: number, trackerId: string): number {
  if (!Number.isSafeInteger(windowSeedMs) || windowSeedMs < 0) {
    throw new FairnessTrackerError(
      "invalid_argument",
      `windowSeedMs must be a safe integer >= 0, found ${String(windowSeedMs)}`,
    );
  }
  const encoder = new ClientIdEncoder();
  encoder.encode(trackerId);
  murmur3Sum64(encoder.bytes, encoder.length, 0);
  const salt = (BigInt(sum64Out[1] as number) << 32n) | BigInt(sum64Out[0] as number);
  let z = BigInt(windowSeedMs) ^ salt;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask64;
  z ^= z >> 31n;
  return Number(z & 0xffff_ffffn);
}
