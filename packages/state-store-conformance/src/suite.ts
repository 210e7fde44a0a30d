import type { MaybePromise, Store } from "@fair/state-store";
import { afterEach, describe } from "vitest";
import { ManualClock, windowMs } from "./fixtures.js";
import { describeLimits } from "./limits.js";
import { describeOffers } from "./offers.js";
import { describeProperties } from "./properties.js";
import { describeReadSeed } from "./read-seed.js";
import { describeSemantics } from "./semantics.js";
import { describeValidation } from "./validation.js";

/** What the suite asks a factory for; every other option is the store's default. */
export interface ConformanceStoreOptions {
  /** Always 300 000 (5 min): the fixtures' seeds are its window starts. */
  readonly windowMs: number;
  /** The suite's clock; the store must read time only from it. */
  readonly now: () => number;
  readonly decayRatePerSecond?: number;
  readonly seedEvictionTtlMs?: number;
  readonly maxClockSkewMs?: number;
  readonly maxFutureWindows?: number;
  readonly maxSeedsPerNamespace?: number;
  readonly maxBucketsPerSeed?: number;
  readonly maxNamespaces?: number;
  /** How long after its epoch began the store accepts offers (`applyOffer`). */
  readonly learningPeriodMs?: number;
}

/** A store made for one test, and how to dispose of it afterwards. */
export interface StoreUnderTest {
  readonly store: Store;
  /** Closes connections and removes what the store wrote; called after each test. */
  dispose?(): MaybePromise<void>;
}

/** Makes a fresh, empty store with the given options. */
export type StoreFactory = (options: ConformanceStoreOptions) => MaybePromise<StoreUnderTest>;

/** How the suite runs. */
export interface ConformanceOptions {
  /** fast-check runs per property. Default 100; keep it modest for a remote store. */
  readonly propertyRuns: number;
  /**
   * Whether the store enforces maxSeedsPerNamespace, maxBucketsPerSeed and
   * maxNamespaces exactly, refusing a batch that crosses one whole. Default
   * true; false leaves the limits tests (of updates and of offers) out, for a
   * store whose limits span
   * independent partitions and are documented as approximate (RedisStore
   * on a Cluster with several slot groups).
   */
  readonly exactLimits: boolean;
}

/** The suite's handle on the store under test, for its test modules. */
export interface ConformanceContext {
  /** A fresh store on a fresh clock standing at `t0`. */
  make(options?: Partial<Omit<ConformanceStoreOptions, "windowMs" | "now">>): Promise<{
    store: Store;
    clock: ManualClock;
  }>;
  readonly propertyRuns: number;
  readonly exactLimits: boolean;
  /** Disposes of every store made so far; property runs call it as they finish. */
  disposeAll(): Promise<void>;
}

/**
 * Registers the `Store` contract (docs/design.md §3–4) as a vitest suite, run against
 * the stores `factory` makes: aggregation, seed windows and clocks,
 * namespaces, stats, paged reads (readSeed), validation of bad input, the
 * seed, bucket and namespace limits, learning mode (applyOffer, epochs) and
 * fast-check properties.
 * Every implementation of `Store` runs the same suite.
 *
 * @example
 * ```ts
 * import { describeStoreConformance } from "@fair/state-store-conformance";
 * import { InMemoryStore } from "@fair/state-store";
 *
 * describeStoreConformance("InMemoryStore", (options) => ({ store: new InMemoryStore(options) }));
 * ```
 */
export function describeStoreConformance(
  name: string,
  factory: StoreFactory,
  options: Partial<ConformanceOptions> = {},
): void {
  const made: StoreUnderTest[] = [];
  const context: ConformanceContext = {
    propertyRuns: options.propertyRuns ?? 100,
    exactLimits: options.exactLimits ?? true,
    async make(overrides = {}) {
      const clock = new ManualClock();
      const underTest = await factory({ windowMs, now: clock.now, ...overrides });
      made.push(underTest);
      return { store: underTest.store, clock };
    },
    async disposeAll() {
      for (const underTest of made.splice(0)) await underTest.dispose?.();
    },
  };

  describe(`${name} conforms to the Store contract`, () => {
    afterEach(() => context.disposeAll());
    describeSemantics(context);
    describeValidation(context);
    describeReadSeed(context);
    if (context.exactLimits) describeLimits(context);
    describeOffers(context);
    describeProperties(context);
  });
}
