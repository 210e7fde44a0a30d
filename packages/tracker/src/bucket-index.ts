import type { ClientIdEncoder } from "./client-id.js";
import { murmur3Sum64, sum64Out } from "./murmur3.js";

/**
 * A client's two base hashes under one murmur seed (FAIR-SPEC §4.2): `hash1` and `hash2` are
 * the low and high 32 bits of murmur3 x64_128's h1. Level `l` uses
 * `h_l = u32(hash1 + u32(l × hash2))` (Kirsch–Mitzenmacher double hashing) and bucket `h_l % M`.
 */
export interface BaseHashes {
  hash1: number;
  hash2: number;
}

/** Hashes the encoder's current id with `seed` into `out`. */
export function baseHashes(encoder: ClientIdEncoder, seed: number, out: BaseHashes): void {
  out.hash1 = murmur3Sum64(encoder.bytes, encoder.length, seed);
  out.hash2 = sum64Out[1] as number;
}

/** Level `level`'s hash, `u32(hash1 + u32(level × hash2))`. */
export function levelHash(hash1: number, hash2: number, level: number): number {
  // Math.imul keeps the low 32 bits of the product, which is all uint32 arithmetic keeps.
  return (hash1 + Math.imul(level, hash2)) >>> 0;
}

/** The column of level `level`'s bucket among `m` buckets: `h_l % M`. */
export function bucketColumn(hash1: number, hash2: number, level: number, m: number): number {
  const h = levelHash(hash1, hash2, level);
  // h % m on a uint32 above 2^31 is a double fmod in V8 (~20 ns, measured); the quotient's
  // floor is exact for h, m < 2^32 (its rounding error stays below 1/m), and ~10× cheaper.
  return h - Math.floor(h / m) * m;
}
