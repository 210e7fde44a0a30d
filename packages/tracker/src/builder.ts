import type { FairnessTrackerConfig, FinalProbabilityFunction } from "./config.js";
import { FairnessTrackerError } from "./errors.js";
import type { FairnessTrackerOptions } from "./options.js";
import { FairnessTracker } from "./tracker.js";
import { defaultFairnessTrackerConfig } from "./tuning.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Go's `FairnessTrackerBuilder`: starts from {@link defaultFairnessTrackerConfig}, lets setters
 * change fields (unvalidated until `build()`, as in Go), and builds trackers. Unlike Go, a
 * built tracker keeps its own frozen copy: later setter calls change only later builds.
 *
 * @example
 * ```ts
 * const tracker = new FairnessTrackerBuilder().setL(4).setRotationFrequencyMs(60_000).build();
 * ```
 */
export class FairnessTrackerBuilder {
  readonly #config: Mutable<FairnessTrackerConfig> = { ...defaultFairnessTrackerConfig() };

  /** Levels (Go `SetL`). */
  setL(l: number): this {
    this.#config.l = l;
    return this;
  }

  /** Buckets per level (Go `SetM`). */
  setM(m: number): this {
    this.#config.m = m;
    return this;
  }

  /** Increment per failure (Go `SetPi`). */
  setPi(pi: number): this {
    this.#config.pi = pi;
    return this;
  }

  /** Decrement per success (Go `SetPd`). */
  setPd(pd: number): this {
    this.#config.pd = pd;
    return this;
  }

  /** Decay rate per second (Go `SetLambda`). */
  setLambda(lambda: number): this {
    this.#config.lambda = lambda;
    return this;
  }

  /** Whether decisions carry stats (Go `SetIncludeStats`). */
  setIncludeStats(includeStats: boolean): this {
    this.#config.includeStats = includeStats;
    return this;
  }

  /** Rotation period in milliseconds (Go `SetRotationFrequency`, which takes a `time.Duration`). */
  setRotationFrequencyMs(rotationFrequencyMs: number): this {
    this.#config.rotationFrequencyMs = rotationFrequencyMs;
    return this;
  }

  /** How bucket probabilities combine (Go `SetFinalProbabilityFunction`). */
  setFinalProbabilityFunction(fn: FinalProbabilityFunction): this {
    this.#config.finalProbabilityFunction = fn;
    return this;
  }

  /** A tracker with the builder's config (Go `Build`). */
  build(options?: Partial<FairnessTrackerOptions>): FairnessTracker {
    return new FairnessTracker(this.#config, options);
  }

  /** A tracker with a fresh default config, ignoring the setters (Go `BuildWithDefaultConfig`). */
  buildWithDefaultConfig(options?: Partial<FairnessTrackerOptions>): FairnessTracker {
    return new FairnessTracker(defaultFairnessTrackerConfig(), options);
  }

  /**
   * A tracker with `config`, ignoring the setters (Go `BuildWithConfig`).
   *
   * @throws FairnessTrackerError `invalid_config` "Configuration cannot be nil" for a missing config.
   */
  buildWithConfig(
    config: FairnessTrackerConfig,
    options?: Partial<FairnessTrackerOptions>,
  ): FairnessTracker {
    if (config === null || config === undefined) {
      throw new FairnessTrackerError("invalid_config", "Configuration cannot be nil");
    }
    return new FairnessTracker(config, options);
  }
}
