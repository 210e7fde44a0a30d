import { StoreError } from "./errors.js";
import type { StoreLimit } from "./store.js";

/**
 * The refusal of an update that would break a limit, worded the same by
 * every store: the seed at fault, what
 * the update would have made of it, and the option to raise.
 *
 * Every limit names the field `seed`, the key of the refused update (a
 * server reports it as `delta_update.seed`), even `max_namespaces`, whose
 * fault is the namespace: the namespace comes from the stream's header, not
 * from a field of the update, and the message names it.
 *
 * @param limit - which limit the update would break
 * @param count - `max_seeds_per_namespace`: the live seeds the namespace
 *   already holds; `max_buckets_per_seed`: the buckets the seed would hold;
 *   `max_namespaces`: the other namespaces holding live seeds
 * @param max - the limit's value
 */
export function limitExceededError(
  limit: StoreLimit,
  namespace: string,
  seed: bigint,
  count: number,
  max: number,
): StoreError {
  const name = JSON.stringify(namespace);
  const problem =
    limit === "max_seeds_per_namespace"
      ? `namespace ${name} already holds ${count} live seeds, the most maxSeedsPerNamespace (${max}) allows; ${seed} was not added and nothing was applied`
      : limit === "max_buckets_per_seed"
        ? `${seed} of namespace ${name} would hold ${count} buckets, more than maxBucketsPerSeed (${max}) allows; nothing was applied`
        : `namespace ${name} would be one namespace more than maxNamespaces (${max}) allows: ${count} already hold buckets; ${seed} was not added and nothing was applied`;
  return new StoreError("limit_exceeded", "seed", problem);
}
