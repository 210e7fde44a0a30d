import { StoreError } from "./errors.js";
import type { StoreLimit } from "./store.js";

/**
 * The refusal of an update that would break a limit, worded the same by
 * every store: the seed at fault, what
 * the update would have made of it, and the option to raise.
 *
 * @param limit - which limit the update would break
 * @param count - `max_seeds_per_namespace`: the live seeds the namespace
 *   already holds; `max_buckets_per_seed`: the buckets the seed would hold
 * @param max - the limit's value
 */
export function limitExceededError(
  limit: StoreLimit,
  namespace: string,
  seed: bigint,
  count: number,
  max: number,
): StoreError {
  const problem =
    limit === "max_seeds_per_namespace"
      ? `namespace ${JSON.stringify(namespace)} already holds ${count} live seeds, the most maxSeedsPerNamespace (${max}) allows; ${seed} was not added and nothing was applied`
      : `${seed} of namespace ${JSON.stringify(namespace)} would hold ${count} buckets, more than maxBucketsPerSeed (${max}) allows; nothing was applied`;
  return new StoreError("limit_exceeded", "seed", problem);
}
