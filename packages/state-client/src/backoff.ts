/**
 * Exponential backoff with full jitter: the n-th consecutive failure waits
 * a uniformly random time in [0, min(max, initial · 2ⁿ)). Full jitter keeps a
 * fleet that lost the server at the same moment from reconnecting in step.
 */
export class Backoff {
  #failures = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number,
  ) {}

  /** Consecutive failures since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** The delay before the next attempt, counting one more failure. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return Math.floor(this.random() * ceiling);
  }

  /** A connection succeeded: start again from `initialMs`. */
  reset(): void {
    this.#failures = 0;
  }
}
