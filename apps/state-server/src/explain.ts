// Why a client is throttled, from the State Service's view: the buckets a
// distributed tracker hashes the client to in a window, each decayed to one
// instant, and the probability the tracker draws against. The same hashing
// the tracker uses (@fair/tracker's bucketIndexesOf and windowMurmurSeed),
// so an operator sees what every instance of that tracker sees.
import {
  bucketIndexesOf,
  type ClientId,
  type FinalProbabilityFunction,
  windowMurmurSeed,
} from "@fair/tracker";

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
export function windowSeed(atMs: number, windowMs: number): bigint {
  return BigInt(Math.floor(atMs / windowMs) * windowMs);
}

/** `p · e^(−λ·Δt/1000)` with Δt = max(0, atMs − lastUpdateTimeMs), as the tracker decays a bucket. */
export function decayedTo(bucket: StoredBucket, atMs: number, lambda: number): number {
  const elapsed = Math.max(0, atMs - bucket.lastUpdateTimeMs);
  if (bucket.prob === 0 || elapsed === 0) return bucket.prob;
  return Math.max(0, bucket.prob * Math.exp(-lambda * (elapsed / 1000)));
}

/** The key of a bucket in {@link explain}'s lookup. */
export const bucketKey = (rowId: number, colId: number): string => `${rowId}:${colId}`;

/**
 * Explains `clientId` in the window starting at `seed`, from `held` (the
 * seed's buckets by {@link bucketKey}), decayed to `atMs`.
 */
export function explain(
  clientId: ClientId,
  tracker: TrackerShape,
  seed: bigint,
  held: ReadonlyMap<string, StoredBucket>,
  atMs: number,
): Explanation {
  const columns = bucketIndexesOf(
    clientId,
    tracker,
    windowMurmurSeed(Number(seed), tracker.trackerId),
  );
  const buckets = columns.map((colId, rowId): ExplainedBucket => {
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
export function hottest(
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
