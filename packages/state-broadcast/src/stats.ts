/**
 * Counters for metrics, as plain numbers. All but `subscribers` and
 * `namespaces` only grow, for the life of the hub; export them as counters.
 */
export interface HubStats {
  /** Open subscriptions now. */
  readonly subscribers: number;
  /** Namespaces with at least one open subscription now. */
  readonly namespaces: number;
  /** Buckets passed to `publish()` while at least one subscriber listened to their namespace. */
  readonly bucketsPublished: number;
  /** Batches handed to consumers (shared ones and reads of the change log alike). */
  readonly batchesDelivered: number;
  /** Buckets in those batches. */
  readonly bucketsDelivered: number;
  /** Updates a lagging subscriber skipped because a newer value of the same key replaced them. */
  readonly merges: number;
  /** Updates replaced by a newer value of the same key before the interval flush. */
  readonly coalesced: number;
  /** Subscriptions closed with `slow_consumer`. */
  readonly slowConsumerCloses: number;
  /** Interval flushes that delivered at least one batch. */
  readonly flushes: number;
}

/** The hub's running counters; subscriptions increment them directly. */
export interface HubCounters {
  bucketsPublished: number;
  batchesDelivered: number;
  bucketsDelivered: number;
  merges: number;
  coalesced: number;
  slowConsumerCloses: number;
  flushes: number;
}

/** Fresh, zeroed counters. */
export function createCounters(): HubCounters {
  return {
    bucketsPublished: 0,
    batchesDelivered: 0,
    bucketsDelivered: 0,
    merges: 0,
    coalesced: 0,
    slowConsumerCloses: 0,
    flushes: 0,
  };
}
