import { StoreError } from "./errors.js";
import type { ResolvedStoreOptions } from "./options.js";
import type { ApplyStatus } from "./store.js";

/**
 * Which seeds a store accepts at a given time (docs/design.md §3–4): seeds behind
 * the eviction horizon (`now − seedEvictionTtlMs`, or a seed evicted by
 * `evictBefore`) are `too_old`; seeds more than `maxFutureWindows` windows
 * ahead of the current window are `too_far_future`. Every `Store` applies
 * the same rule, so an in-memory and a Redis store drop the same deltas.
 */
export class SeedRange {
  readonly #options: ResolvedStoreOptions;
  // Seeds below this were evicted; deltas for them are too old from then on.
  #evictedBefore = 0n;
  // Horizon and future limit as of #clockMs: bigint arithmetic once per
  // clock tick, not once per delta.
  #clockMs = Number.NaN;
  #horizon = 0n;
  #futureLimit = 0n;

  constructor(options: ResolvedStoreOptions) {
    this.#options = options;
  }

  /** The highest seed passed to {@link SeedRange.evictBefore}; `0n` if none. */
  get evictedBefore(): bigint {
    return this.#evictedBefore;
  }

  /** Raises the eviction floor: seeds below `seed` are too old from now on. */
  evictBefore(seed: bigint): void {
    if (seed > this.#evictedBefore) {
      this.#evictedBefore = seed;
      this.#clockMs = Number.NaN;
    }
  }

  /** Whether a delta for `seed` is applied at `nowMs`, or why not. */
  classify(seed: bigint, nowMs: number): ApplyStatus {
    if (nowMs !== this.#clockMs) {
      const { windowBig, ttlBig, futureSpanBig } = this.#options;
      const nowBig = BigInt(Math.floor(nowMs));
      const horizon = nowBig - ttlBig;
      this.#horizon = horizon > this.#evictedBefore ? horizon : this.#evictedBefore;
      const intoWindow = ((nowBig % windowBig) + windowBig) % windowBig;
      this.#futureLimit = nowBig - intoWindow + futureSpanBig;
      this.#clockMs = nowMs;
    }
    if (seed < this.#horizon) return "too_old";
    if (seed > this.#futureLimit) return "too_far_future";
    return "applied";
  }

  /** The lowest live seed at `nowMs`: eviction removes every seed below it. */
  horizon(nowMs: number): bigint {
    this.classify(0n, nowMs);
    return this.#horizon;
  }

  /** The latest timestamp a delta may carry at `nowMs`; later ones are clamped to it. */
  latestTimestamp(nowMs: number): number {
    return Math.floor(nowMs) + this.#options.maxClockSkewMs;
  }
}

/** Reads the store's clock, refusing a reading that is not finite Unix ms. */
export function readStoreClock(options: ResolvedStoreOptions): number {
  const now = options.now();
  if (typeof now !== "number" || !Number.isFinite(now)) {
    throw new StoreError("invalid_option", "now", `returned ${String(now)}, not Unix ms`);
  }
  return now;
}
