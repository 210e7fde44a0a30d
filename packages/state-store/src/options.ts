import { systemTimers, type Timers } from "@fair/timers";
import { StoreError } from "./errors.js";

/**
 * The timers a store takes.
 *
 * @deprecated Use `Timers` from `@fair/timers`, which every package takes;
 * this name goes in the next release.
 */
export type StoreTimers = Timers;

/** Options of {@link InMemoryStore}. Every field is optional in the constructor. */
export interface InMemoryStoreOptions {
  /**
   * Length of a seed window, in milliseconds. Seeds are window starts, so a
   * seed that is not a multiple of it is refused: it comes from a client
   * configured with another window. Default 300 000 (5 min).
   */
  windowMs: number;
  /**
   * How long a seed lives after its window starts, in milliseconds: seeds
   * below `now − seedEvictionTtlMs` are evicted and their deltas dropped. At
   * least `windowMs`, so the current window is always live. Default
   * `3 × windowMs` (900 000).
   */
  seedEvictionTtlMs: number;
  /**
   * λ, the exponential decay rate of probabilities, per second. Must equal
   * the trackers' `Lambda`. 0 turns decay off: plain sum, clamp, max
   * timestamp. Default 0.01.
   */
  decayRatePerSecond: number;
  /** Exclusive bound on row ids (FAIR levels). Default 256. */
  maxRows: number;
  /**
   * Exclusive bound on column ids (buckets per level). At most 2^32, and
   * `maxRows × maxCols` at most 2^53. Default 2^24 (16 777 216).
   */
  maxCols: number;
  /**
   * How many windows ahead of the current one a seed may be; later seeds
   * are refused and counted. Default 2 (a tracker writes the next window's
   * seed, and its clock may run a little ahead).
   */
  maxFutureWindows: number;
  /**
   * Most live seeds (at or above the eviction horizon, holding at least one
   * bucket) one namespace may hold. An update that would add one more is
   * refused whole with a `StoreError` of code `limit_exceeded`. Deltas for
   * seeds outside the live range are dropped anyway, so a namespace holds at
   * most `⌊seedEvictionTtlMs / windowMs⌋ + 1 + maxFutureWindows` live seeds
   * (6 with the defaults): this binds only with a long TTL or a short
   * window, and must then be at least that or a fleet's own seeds are
   * refused. Default 64.
   */
  maxSeedsPerNamespace: number;
  /**
   * Most buckets one seed of one namespace may hold. An update that would
   * leave its seed holding more is refused whole with a `StoreError` of
   * code `limit_exceeded`. Default 2^22 (4 194 304): ~250 MB of one seed in
   * memory, 1 400 times what a tracker of the default 3 × 1 000 buckets can
   * fill.
   */
  maxBucketsPerSeed: number;
  /**
   * Most namespaces holding buckets at once (in a live seed: one at or above
   * the eviction horizon). An update that would put the first bucket into
   * one more namespace is refused whole with a `StoreError` of code
   * `limit_exceeded`, so a client cannot make the store grow with every
   * namespace header it invents. A namespace whose buckets all fell to 0, or
   * whose seeds all left the horizon (evicted yet or not), frees its place.
   * Default 1024.
   */
  maxNamespaces: number;
  /**
   * How long after its epoch began the store accepts state offers (learning
   * mode, `applyOffer`), in milliseconds; later offers are refused
   * (`learning_over`) and counted, so a confused client cannot inflate a
   * settled state. A few reconnect backoffs: long enough for every instance
   * of a fleet to reconnect after a restart. Default 30 000.
   */
  learningPeriodMs: number;
  /**
   * How far ahead of `now()` a delta's timestamp may be, in milliseconds;
   * later timestamps are clamped to `now() + maxClockSkewMs` and counted.
   * Default 10 % of `windowMs` (30 000).
   */
  maxClockSkewMs: number;
  /**
   * How often the eviction timer runs once `start()`ed, in milliseconds.
   * Default 10 % of `windowMs` (30 000).
   */
  evictionIntervalMs: number;
  /** The clock, in Unix milliseconds. Default `Date.now`. */
  now: () => number;
  /**
   * Timers for eviction (only the interval functions are used). Default
   * `systemTimers` from `@fair/timers`: the platform's, `unref()`ed so a
   * forgotten store does not keep the process alive.
   */
  timers: Timers;
}

/**
 * The defaults of {@link InMemoryStoreOptions}. `seedEvictionTtlMs`,
 * `maxClockSkewMs` and `evictionIntervalMs` shown here are for the default
 * window; when `windowMs` is given and they are not, they scale with it
 * (3×, 10 %, 10 %).
 */
export const defaultStoreOptions: Readonly<InMemoryStoreOptions> = Object.freeze({
  windowMs: 300_000,
  seedEvictionTtlMs: 900_000,
  decayRatePerSecond: 0.01,
  maxRows: 256,
  maxCols: 2 ** 24,
  maxFutureWindows: 2,
  maxSeedsPerNamespace: 64,
  maxBucketsPerSeed: 2 ** 22,
  maxNamespaces: 1024,
  learningPeriodMs: 30_000,
  maxClockSkewMs: 30_000,
  evictionIntervalMs: 30_000,
  now: Date.now,
  timers: systemTimers,
});

/**
 * Options after defaults, checked, with the bigint forms the hot path needs.
 * Other `Store` implementations resolve their rules with it too
 * (`@fair/state-store/internal`), so they share the in-memory store's.
 */
export interface ResolvedStoreOptions extends Readonly<InMemoryStoreOptions> {
  readonly windowBig: bigint;
  readonly ttlBig: bigint;
  readonly futureSpanBig: bigint;
  /** λ per millisecond, the form the decay formula uses. */
  readonly decayPerMs: number;
}

/** Fills in defaults and refuses unusable options with a `StoreError` (`invalid_option`). */
export function resolveStoreOptions(partial: Partial<InMemoryStoreOptions>): ResolvedStoreOptions {
  const windowMs = partial.windowMs ?? defaultStoreOptions.windowMs;
  requireInteger("windowMs", windowMs, 1, Number.MAX_SAFE_INTEGER);
  const d = defaultStoreOptions;
  // Field by field rather than a spread, so an explicit `undefined` from
  // JavaScript means "default" and unknown keys are left behind.
  const options: InMemoryStoreOptions = {
    windowMs,
    seedEvictionTtlMs: partial.seedEvictionTtlMs ?? 3 * windowMs,
    decayRatePerSecond: partial.decayRatePerSecond ?? d.decayRatePerSecond,
    maxRows: partial.maxRows ?? d.maxRows,
    maxCols: partial.maxCols ?? d.maxCols,
    maxFutureWindows: partial.maxFutureWindows ?? d.maxFutureWindows,
    maxSeedsPerNamespace: partial.maxSeedsPerNamespace ?? d.maxSeedsPerNamespace,
    maxBucketsPerSeed: partial.maxBucketsPerSeed ?? d.maxBucketsPerSeed,
    maxNamespaces: partial.maxNamespaces ?? d.maxNamespaces,
    learningPeriodMs: partial.learningPeriodMs ?? d.learningPeriodMs,
    maxClockSkewMs: partial.maxClockSkewMs ?? Math.floor(windowMs / 10),
    evictionIntervalMs: partial.evictionIntervalMs ?? Math.max(1, Math.floor(windowMs / 10)),
    now: partial.now ?? d.now,
    timers: partial.timers ?? d.timers,
  };
  requireInteger("seedEvictionTtlMs", options.seedEvictionTtlMs, windowMs, Number.MAX_SAFE_INTEGER);
  const rate = options.decayRatePerSecond;
  if (typeof rate !== "number" || !Number.isFinite(rate) || rate < 0) {
    throw new StoreError(
      "invalid_option",
      "decayRatePerSecond",
      `must be finite and ≥ 0, got ${rate}`,
    );
  }
  requireInteger("maxRows", options.maxRows, 1, 2 ** 32);
  requireInteger("maxCols", options.maxCols, 1, 2 ** 32);
  // Keys are row × maxCols + col in a double; past 2^53 they would collide.
  if (options.maxRows * options.maxCols > 2 ** 53) {
    throw new StoreError("invalid_option", "maxCols", "maxRows × maxCols must be at most 2^53");
  }
  requireInteger("maxFutureWindows", options.maxFutureWindows, 0, 2 ** 20);
  requireInteger("maxSeedsPerNamespace", options.maxSeedsPerNamespace, 1, 2 ** 20);
  requireInteger("maxBucketsPerSeed", options.maxBucketsPerSeed, 1, Number.MAX_SAFE_INTEGER);
  requireInteger("maxNamespaces", options.maxNamespaces, 1, 2 ** 20);
  requireInteger("learningPeriodMs", options.learningPeriodMs, 0, Number.MAX_SAFE_INTEGER);
  requireInteger("maxClockSkewMs", options.maxClockSkewMs, 0, Number.MAX_SAFE_INTEGER);
  requireInteger("evictionIntervalMs", options.evictionIntervalMs, 1, 2 ** 31 - 1);
  if (typeof options.now !== "function") {
    throw new StoreError("invalid_option", "now", "must be a function returning Unix ms");
  }
  const timers = options.timers as Partial<Timers> | undefined;
  if (typeof timers?.setInterval !== "function" || typeof timers.clearInterval !== "function") {
    throw new StoreError("invalid_option", "timers", "must have setInterval and clearInterval");
  }
  return Object.freeze({
    ...options,
    windowBig: BigInt(windowMs),
    ttlBig: BigInt(options.seedEvictionTtlMs),
    futureSpanBig: BigInt(options.maxFutureWindows) * BigInt(windowMs),
    decayPerMs: rate / 1000,
  });
}

function requireInteger(field: string, value: unknown, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new StoreError(
      "invalid_option",
      field,
      `must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
}

/** The options as the user sees them: without the derived fields. */
export function publicOptions(resolved: ResolvedStoreOptions): Readonly<InMemoryStoreOptions> {
  const { windowBig, ttlBig, futureSpanBig, decayPerMs, ...options } = resolved;
  return Object.freeze(options);
}
