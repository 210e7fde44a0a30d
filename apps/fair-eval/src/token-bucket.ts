import { durationSeconds } from "./workload.js";

/**
 * The shared resource of the harness (docs/evaluation.md §1.3): `max` tokens at t = 0, refilled at `rate`
 * per second; a take at time t refills to t, then succeeds and spends one token if at least one
 * is there. Time is the event's `Duration.Seconds()`, as in Go.
 */
export class TokenBucket {
  #tokens: number;
  readonly #max: number;
  readonly #rate: number;
  #lastSeconds = 0;

  constructor(ratePerSecond: number, maxTokens: number) {
    this.#tokens = maxTokens;
    this.#max = maxTokens;
    this.#rate = ratePerSecond;
  }

  /** Takes a token at `atNs`; false when the bucket is short. */
  take(atNs: number): boolean {
    const now = durationSeconds(atNs);
    this.#tokens = Math.min(this.#max, this.#tokens + this.#rate * (now - this.#lastSeconds));
    this.#lastSeconds = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
