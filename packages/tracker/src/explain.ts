// Why a client is throttled, from a State Service's view of a window: the
// buckets a distributed tracker hashes the client to, each decayed to one
// instant as that tracker reads it, and the probability the tracker draws
// against. The same hashing and decay the tracker uses, so an operator's
// tool (`fair-state explain`, the server's dashboard) shows what every
// instance of that tracker sees.
import { bucketIndexesOf } from "./bucket-index.js";
import type { ClientId } from "./client-id.js";
import type { FinalProbabilityFunction } from "./config.js";
import { windowMurmurSeed } from "./window-seed.js";

/** A bucket as the server holds it. */
export interface StoredBucket {
  readonly rowId: number;
  readonly colId: number;
  readonly prob: number;
  readonly lastUpdateTimeMs: number;
}

/** One level's bucket of a client, at the instant explained. */
export interface ExplainedBucket extends StoredBucket {
  /** The probability as stored, before decay to the instant (`prob` is after). */
  readonly storedProb: number;
  /** Milliseconds from the bucket's last update to the instant; `null` for a bucket the server does not hold (the default, 0). */
  readonly ageMs: number | null;
}

/** A client's buckets in one window and the throttle probability they give. */
export interface Explanation {
  /** The window's start, Unix ms, as a decimal string (the wire's uint64). */
  readonly seed: string;
  /** One per level, level 0 first. */
  readonly buckets: readonly ExplainedBucket[];
  /** The final probability function of the levels' decayed probabilities. */
  readonly finalProbability: number;
}

/** The tracker's shape as far as explaining needs it. */
export interface TrackerShape {
  readonly trackerId: string;
  readonly l: number;
  readonly m: number;
  /** Decay rate, per second. */
  readonly lambda: number;
  readonly finalProbabilityFunction: FinalProbabilityFunction;
}

/** The window start of the window holding `atMs`. */
export function windowSeedOf(atMs: number, windowMs: number): bigint {
  return BigInt(Math.floor(atMs / windowMs) * windowMs);
}

/**
 * `bucket`'s probability at `atMs`, decayed exactly as a distributed tracker reads a bucket
 * (`WindowReplica.read`): `p · e^(−(λ/1000)·Δt)` with Δt = atMs − lastUpdateTimeMs, no decay
 * when Δt ≤ 0 (another host's clock ahead).
 */
export function decayedTo(bucket: StoredBucket, atMs: number, lambda: number): number {
  const elapsed = atMs - bucket.lastUpdateTimeMs;
  const { prob } = bucket;
  return elapsed > 0 && lambda !== 0 && prob !== 0
    ? prob * Math.exp(-(lambda / 1000) * elapsed)
    : prob;
}

/** The key of a bucket in {@link explainClient}'s lookup: `"row:col"`. */
export const bucketKey = (rowId: number, colId: number): string => `${rowId}:${colId}`;

/**
 * The column `clientId` hashes to on each level (level 0 first) in the window starting at
 * `seed`, for every instance of tracker `tracker.trackerId`: the buckets to read to explain it.
 */
export function clientColumns(
  clientId: ClientId,
  tracker: Pick<TrackerShape, "trackerId" | "l" | "m">,
  seed: bigint,
): number[] {
  return bucketIndexesOf(clientId, tracker, windowMurmurSeed(Number(seed), tracker.trackerId));
}

/**
 * Explains `clientId` in the window starting at `seed` (Unix ms), from `held` (the seed's
 * buckets by {@link bucketKey}, as a State Service holds them), decayed to `atMs`: for a
 * distributed tracker whose view equals `held`, the same columns, probabilities and final
 * probability its `registerRequest` reports in `stats` at `atMs`.
 *
 * @throws FairnessTrackerError `invalid_argument` for a bad client id, `l` or `m`
 */
export function explainClient(
  clientId: ClientId,
  tracker: TrackerShape,
  seed: bigint,
  held: ReadonlyMap<string, StoredBucket>,
  atMs: number,
): Explanation {
  const buckets = clientColumns(clientId, tracker, seed).map((colId, rowId): ExplainedBucket => {
    const stored = held.get(bucketKey(rowId, colId));
    if (stored === undefined) {
      return { rowId, colId, prob: 0, lastUpdateTimeMs: 0, storedProb: 0, ageMs: null };
    }
    return {
      rowId,
      colId,
      prob: decayedTo(stored, atMs, tracker.lambda),
      lastUpdateTimeMs: stored.lastUpdateTimeMs,
      storedProb: stored.prob,
      ageMs: atMs - stored.lastUpdateTimeMs,
    };
  });
  return {
    seed: seed.toString(),
    buckets,
    finalProbability: tracker.finalProbabilityFunction(buckets.map((b) => b.prob)),
  };
}

/** The `count` buckets of `held` with the highest probability decayed to `atMs`, highest first. */
export function hottestBuckets(
  held: Iterable<StoredBucket>,
  count: number,
  atMs: number,
  lambda: number,
): (StoredBucket & { readonly storedProb: number; readonly ageMs: number })[] {
  const ranked = [];
  for (const bucket of held) {
    ranked.push({
      ...bucket,
      prob: decayedTo(bucket, atMs, lambda),
      storedProb: bucket.prob,
      ageMs: atMs - bucket.lastUpdateTimeMs,
    });
  }
  return ranked.sort((a, b) => b.prob - a.prob).slice(0, count);
}
