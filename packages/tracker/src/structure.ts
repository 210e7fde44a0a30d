import { bucketColumn } from "./bucket-index.js";
import type { FairnessTrackerConfig } from "./config.js";
import { adjustProbability, clamp01 } from "./decay.js";
import { decision, type Outcome, type RegisterRequestResult } from "./results.js";

/**
 * One FAIR structure of L levels × M buckets (Go's `data.Structure`), in local mode: it
 * behaves as the Go code does, bit for bit. A bucket is a probability and the time it was last
 * visited; every visit, reads included, decays it lazily to the visit's time and stamps it, so
 * reads mutate state exactly as in Go and the Go evaluation reproduces.
 */
export class Structure {
  /** Go's `GetID()`: 1 and 2 at construction, then one more per rotation. */
  readonly id: number;
  /** The seed every id is hashed with in this structure. */
  readonly murmurSeed: number;
  /** The final probability of the last `registerRequest`, NaN before the first. */
  lastFinalProbability = Number.NaN;
  readonly #config: FairnessTrackerConfig;
  // Bucket (level, column) lives at level × M + column.
  readonly #probs: Float64Array;
  readonly #times: Float64Array;

  constructor(config: FairnessTrackerConfig, id: number, murmurSeed: number, nowMs: number) {
    this.#config = config;
    this.id = id;
    this.murmurSeed = murmurSeed;
    this.#probs = new Float64Array(config.l * config.m);
    // Every bucket starts at the structure's creation time, in ms, as in Go.
    this.#times = new Float64Array(config.l * config.m).fill(nowMs);
  }

  /** Go's `RegisterRequest`: decays the client's buckets, combines them, draws once. */
  registerRequest(
    hash1: number,
    hash2: number,
    nowMs: number,
    random: () => number,
  ): RegisterRequestResult {
    const { l, m, includeStats, finalProbabilityFunction } = this.#config;
    const probabilities: number[] = [];
    const indexes: number[] | undefined = includeStats ? [] : undefined;
    for (let level = 0; level < l; level++) {
      const column = bucketColumn(hash1, hash2, level, m);
      probabilities.push(this.#visit(level * m + column, nowMs));
      indexes?.push(column);
    }
    const finalProbability = finalProbabilityFunction(probabilities);
    this.lastFinalProbability = finalProbability;
    // "<=": a probability of 1 throttles every request, 0 almost none (only a draw of exactly 0).
    const shouldThrottle = random() <= finalProbability;
    const stats =
      indexes === undefined
        ? undefined
        : { finalProbability, bucketIndexes: indexes, bucketProbabilities: probabilities };
    return decision(shouldThrottle, stats);
  }

  /** Go's `ReportOutcome`: decays, then adds `+Pi` (failure) or `−Pd` (success) and clamps. */
  reportOutcome(hash1: number, hash2: number, outcome: Outcome, nowMs: number): void {
    const { l, m, pi, pd } = this.#config;
    const adjustment = outcome === "success" ? -pd : pi;
    const probs = this.#probs;
    for (let level = 0; level < l; level++) {
      const slot = level * m + bucketColumn(hash1, hash2, level, m);
      probs[slot] = clamp01(this.#visit(slot, nowMs) + adjustment);
    }
  }

  /** Decays bucket `slot` to `nowMs`, stamps it, and returns its probability. */
  #visit(slot: number, nowMs: number): number {
    // Go subtracts in uint64, so a clock that steps back wraps to ~1.8e19 ms and wipes the
    // bucket; the port counts a negative interval as zero instead (docs/fair-spec.md §11.1).
    const elapsed = nowMs - (this.#times[slot] as number);
    const p = adjustProbability(
      this.#probs[slot] as number,
      this.#config.lambda,
      Math.max(0, elapsed),
    );
    this.#probs[slot] = p;
    this.#times[slot] = nowMs;
    return p;
  }
}
