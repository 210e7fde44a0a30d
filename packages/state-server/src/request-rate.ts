/**
 * A token bucket per stream: up to `perSecond` requests in any second, with
 * bursts of up to `perSecond` at once. A client that floods one stream is
 * cut off (RESOURCE_EXHAUSTED) instead of starving the others, whose
 * requests the same event loop must serve.
 */
export class RequestRate {
  #tokens: number;
  #lastMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.#tokens = perSecond;
    this.#lastMs = now();
  }

  /** Takes one token; false when the stream is over its rate. */
  take(): boolean {
    if (this.perSecond === Number.POSITIVE_INFINITY) return true;
    const nowMs = this.now();
    const elapsed = Math.max(0, nowMs - this.#lastMs);
    this.#lastMs = nowMs;
    this.#tokens = Math.min(this.perSecond, this.#tokens + (elapsed * this.perSecond) / 1000);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
