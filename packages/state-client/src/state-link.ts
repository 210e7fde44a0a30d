/**
 * One outcome adjustment to one bucket, as a FAIR instance sends it: `+Pi`
 * per failure, `−Pd` per success (or the decayed sum of several), stamped
 * with when it happened. Never a locally decayed or clamped difference: the
 * server owns decay.
 */
export interface BucketDelta {
  /** The FAIR level. */
  readonly rowId: number;
  /** The bucket within the level. */
  readonly colId: number;
  /** The adjustment, finite and within [-1, 1]. */
  readonly deltaProb: number;
  /** When the adjustment happened, Unix milliseconds. */
  readonly lastUpdateTimeMs: number;
}

/** The server's aggregated value of one bucket: `prob` as of `lastUpdateTimeMs`. */
export interface BucketValue {
  readonly rowId: number;
  readonly colId: number;
  /** Within [0, 1]. */
  readonly prob: number;
  /** Unix milliseconds; the value decays from here at the server's rate. */
  readonly lastUpdateTimeMs: number;
}

/** Where a link is: trying to reach the server, connected, cut off (retrying), or closed for good. */
export type LinkStatus = "connecting" | "connected" | "disconnected" | "closed";

/** What a {@link StateLink} tells its listeners. Every method is optional. */
export interface StateLinkListener {
  /**
   * Aggregated buckets of one seed arrived: a broadcast (`fullState` false)
   * or a part of the reply to a full-state request (`fullState` true),
   * including the requests the link repeats itself after a reconnect.
   * Overwrite local buckets with them; the server is authoritative.
   */
  onStateUpdate?(seed: bigint, buckets: readonly BucketValue[], fullState: boolean): void;
  /**
   * The link's status changed. For logs and metrics: a listener need not
   * ask for full state on `connected`, the link already has (see
   * {@link StateLink}).
   */
  onStatusChange?(status: LinkStatus): void;
  /**
   * The link reconnected to a server whose state epoch (`fair-state-epoch`)
   * differs from the last one it saw: that server may have lost what the
   * fleet held (a restart, a Redis that lost its data). Called before the
   * link delivers anything from the new epoch; offer what you hold with
   * {@link StateLink.offerState}, synchronously, in this call: the link sends
   * the offers, then asks again for every seed it holds. Not called on the
   * first connection (there is no epoch to compare with).
   */
  onEpochChange?(epoch: string, previous: string): void;
  /**
   * The server's window or decay rate differs from the link's (`message`
   * names both): the two would not agree on seeds or decay. A tracker
   * reports it (its `onError`, code `config_mismatch`).
   */
  onConfigMismatch?(message: string): void;
}

/** Options for {@link StateLink.requestFullState}. */
export interface FullStateRequestOptions {
  /** Reject with a timeout error after this long; default: the link's request timeout. */
  readonly timeoutMs?: number;
  /** Abort the wait (the request may still be answered, and is then ignored). */
  readonly signal?: AbortSignal;
}

/**
 * A FAIR instance's link to the shared state: the small surface the tracker
 * depends on. `StateClient` implements it over gRPC; simulations and tests
 * implement it in process.
 *
 * **Full state after a reconnect is the link's job.** A link that can lose
 * its connection remembers every seed it was asked for with
 * {@link StateLink.requestFullState} (it may forget seeds too old to be
 * live), asks for them again each time it reconnects, and delivers the
 * replies to listeners as `fullState` updates. Its user therefore asks only
 * for seeds it has not asked for yet (for a tracker: at cold start and at a
 * window change), never again because of a reconnect: that would only
 * duplicate the reply. A link that never disconnects (an in-process one)
 * has nothing to repeat.
 *
 * **Learning mode is the listener's job.** When the link reconnects to a new
 * state epoch it calls `onEpochChange` first; a tracker offers its local
 * buckets of its live seeds with `offerState`, so a restarted server learns
 * back whom the fleet was throttling instead of overwriting every instance
 * with what little it has. The link then repeats its full-state requests;
 * replies to requests made before the offers are not delivered.
 */
export interface StateLink {
  /**
   * Queues adjustments for one seed (a window start in Unix ms). Never
   * blocks and never throws: the caller is on its request path.
   */
  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void;
  /**
   * Every non-default bucket of `seed` as the server holds it (an empty list
   * for an unknown seed). The buckets are also delivered to listeners. The
   * link remembers `seed` and asks for it again after every reconnect,
   * delivering that reply to listeners too. The returned promise settles
   * once: with the first complete reply, or with the link's error.
   */
  requestFullState(
    seed: bigint,
    options?: FullStateRequestOptions,
  ): Promise<readonly BucketValue[]>;
  /**
   * Offers this instance's own view of one seed — each bucket's value as of
   * its own time, never adjustments — for the server to merge by maximum
   * (learning mode). Meant for {@link StateLinkListener.onEpochChange};
   * the link sends offers before it repeats its full-state requests. Never
   * blocks and never throws. A link whose server takes no offers ignores it.
   */
  offerState(seed: bigint, buckets: readonly BucketValue[]): void;
  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: StateLinkListener): () => void;
  /** The link's current status. */
  readonly status: LinkStatus;
  /**
   * The seed window, in ms, the link is configured for and checks its
   * server against. A tracker whose `rotationFrequencyMs` differs reports
   * `config_mismatch` and shares nothing through the link. Optional: a link
   * without it is not checked.
   */
  readonly windowMs?: number;
  /** The decay rate λ, per second, the link is configured for; checked as `windowMs` is. */
  readonly decayRatePerSecond?: number;
}
