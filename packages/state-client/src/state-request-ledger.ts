/**
 * The `StateRequest`s one stream has sent, counted by seed, so that the replies to those sent
 * before an epoch change's offers (which describe the state before the server merged them)
 * can be told from the replies to the requests repeated after the offers.
 *
 * The server answers a stream's `StateRequest`s one at a time, in the order sent, each with
 * one or more parts of which the last is marked `full_state_last`. So for each seed the first
 * `n` complete replies answer the first `n` requests: counting is enough.
 */
export class StateRequestLedger {
  /** Requests sent and not yet answered in full, by seed. */
  readonly #unanswered = new Map<bigint, number>();
  /** Of those, the requests whose replies are to be dropped, by seed. */
  readonly #stale = new Map<bigint, number>();

  /** A `StateRequest` for `seed` was handed to the stream. */
  sent(seed: bigint): void {
    this.#unanswered.set(seed, (this.#unanswered.get(seed) ?? 0) + 1);
  }

  /**
   * Every request sent so far is to be answered with state from before the offers that
   * follow: their replies will be dropped. Returns the seeds they asked for.
   */
  markSentAsStale(): bigint[] {
    for (const [seed, count] of this.#unanswered) {
      this.#stale.set(seed, (this.#stale.get(seed) ?? 0) + count);
    }
    this.#unanswered.clear();
    return [...this.#stale.keys()];
  }

  /** A part of a full-state reply for `seed` arrived; returns whether it answers a stale request. */
  onPart(seed: bigint, last: boolean): boolean {
    const stale = this.#stale.get(seed);
    if (stale !== undefined) {
      if (last) decrement(this.#stale, seed, stale);
      return true;
    }
    const unanswered = this.#unanswered.get(seed);
    if (last && unanswered !== undefined) decrement(this.#unanswered, seed, unanswered);
    return false;
  }
}

function decrement(counts: Map<bigint, number>, seed: bigint, count: number): void {
  if (count <= 1) counts.delete(seed);
  else counts.set(seed, count - 1);
}
