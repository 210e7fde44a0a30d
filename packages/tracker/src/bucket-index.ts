import { type ClientId, ClientIdEncoder } from "./client-id.js";
import type { FairnessTrackerConfig } from "./config.js";
import { FairnessTrackerError } from "./errors.js";
import { murmur3Sum64, sum64Out } from "./murmur3.js";

/**
 * A client's two base hashes under one murmur seed (docs/fair-spec.md §4.2): `hash1` and `hash2` are
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

// One encoder and one pair for bucketIndexesOf: it runs to completion, so sharing is safe.
const sharedEncoder = new ClientIdEncoder();
const sharedHashes: BaseHashes = { hash1: 0, hash2: 0 };

/**
 * Which bucket `clientId` falls in on each level of a structure of `l` levels × `m` buckets
 * hashed with `murmurSeed`: per level `l`, the column `h_l % M` (docs/fair-spec.md §4.2), the same
 * numbers a tracker reports as `stats.bucketIndexes` for that structure. Only `l` and `m` of the
 * config are read, so a full {@link FairnessTrackerConfig} can be passed.
 *
 * Which murmur seed a structure has: in distributed mode, the window's
 * {@link windowMurmurSeed}`(windowSeedMs, trackerId)`, the same on every instance (the main
 * structure's window is `tracker.structureIds.main`, the wire's `seed`); in local mode, the
 * value the `murmurSeed` option returned for that structure. Use it to find which State Service
 * buckets (`rowId` = level, `colId` = column) hold a client, or which clients share a bucket.
 *
 * @param clientId - the client, as `registerRequest` takes it (strings hash as UTF-8)
 * @param structure - `l` and `m`, integers from 1 to 2^32 − 1
 * @param murmurSeed - the structure's murmur seed, a uint32
 * @returns a new array of `l` columns, each in `[0, m)`
 * @throws FairnessTrackerError `invalid_argument` for an id that is neither a string nor bytes,
 *   a non-integer or out-of-range `l` or `m`, or a murmur seed that is not a uint32
 * @example
 * ```ts
 * const seed = Math.floor(Date.now() / config.rotationFrequencyMs) * config.rotationFrequencyMs;
 * bucketIndexesOf("user-42", config, windowMurmurSeed(seed, "checkout")); // e.g. [17, 803, 412]
 * ```
 */
export function bucketIndexesOf(
  clientId: ClientId,
  structure: Pick<FairnessTrackerConfig, "l" | "m">,
  murmurSeed: number,
): number[] {
  const { l, m } = structure;
  if (!isPositiveUint32(l) || !isPositiveUint32(m)) {
    throw new FairnessTrackerError(
      "invalid_argument",
      `l and m must be integers from 1 to 2^32 - 1, found l: ${String(l)} and m: ${String(m)}`,
    );
  }
  if (!Number.isInteger(murmurSeed) || murmurSeed < 0 || murmurSeed > 0xffff_ffff) {
    throw new FairnessTrackerError(
      "invalid_argument",
      `murmurSeed must be a uint32, found ${String(murmurSeed)}`,
    );
  }
  sharedEncoder.encode(clientId);
  baseHashes(sharedEncoder, murmurSeed, sharedHashes);
  const { hash1, hash2 } = sharedHashes;
  const columns = new Array<number>(l);
  for (let level = 0; level < l; level++) columns[level] = bucketColumn(hash1, hash2, level, m);
  return columns;
}

function isPositiveUint32(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 0xffff_ffff;
}
