import type { DropReason, OfferStatus, StoreLimit, StoreStats } from "./store.js";

/** The counting part of {@link StoreStats}: what every store reports the same way. */
export type StoreCounts = Pick<
  StoreStats,
  | "appliedDeltas"
  | "droppedDeltas"
  | "clampedTimestamps"
  | "limitRefusals"
  | "evictedSeeds"
  | "evictedBuckets"
  | "offers"
>;

/** The running counters behind `stats()`; every store counts with them, so all count alike. */
export class StoreCounters {
  applied = 0;
  clamped = 0;
  readonly #dropped: Record<DropReason, number> = { too_old: 0, too_far_future: 0 };
  readonly #refused: Record<StoreLimit, number> = {
    max_seeds_per_namespace: 0,
    max_buckets_per_seed: 0,
    max_namespaces: 0,
  };
  readonly #offers: Record<OfferStatus, number> = {
    applied: 0,
    learning_over: 0,
    too_old: 0,
    too_far_future: 0,
  };
  #evictedSeeds = 0;
  #evictedBuckets = 0;

  /** `count` deltas set aside for `reason`. */
  drop(reason: DropReason, count: number): void {
    this.#dropped[reason] += count;
  }

  /** An update refused by `limit`. */
  refuse(limit: StoreLimit): void {
    this.#refused[limit]++;
  }

  /** A state offer, by what became of it. */
  offer(status: OfferStatus): void {
    this.#offers[status]++;
  }

  /** Seeds removed by eviction, and the buckets they held. */
  evicted(seeds: number, buckets: number): void {
    this.#evictedSeeds += seeds;
    this.#evictedBuckets += buckets;
  }

  /** A copy of the counts, as `stats()` reports them. */
  counts(): StoreCounts {
    return {
      appliedDeltas: this.applied,
      droppedDeltas: { ...this.#dropped },
      clampedTimestamps: this.clamped,
      limitRefusals: { ...this.#refused },
      evictedSeeds: this.#evictedSeeds,
      evictedBuckets: this.#evictedBuckets,
      offers: { ...this.#offers },
    };
  }
}
