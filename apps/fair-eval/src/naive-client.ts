// The `naive` negative control of docs/evaluation.md §2.4: a literal distributed port of Go's structure.
// Every visit mutates the local replica as Go does — decay on reads too — and every mutation
// goes to the server as a difference `p_after − p_before` (decay and the clamped outcome), which
// the server sums without decaying (an InMemoryStore with λ = 0: sum, clamp, max timestamp).
// Broadcasts overwrite. Decay gets counted once per instance that sees it: the hottest buckets
// decay fastest. It exists to show that the evaluation catches that bug.
import type { BucketDelta, StateLink } from "@fair/state-client";
import { bucketIndexesOf, type FairnessTrackerConfig, windowMurmurSeed } from "@fair/tracker";

interface Replica {
  readonly seed: bigint;
  readonly murmurSeed: number;
  readonly probs: Float64Array;
  readonly times: Float64Array;
}

/** A decision as the simulation records it. */
export interface SimDecision {
  readonly shouldThrottle: boolean;
  readonly finalProbability: number;
}

/** One instance running the naive protocol. */
export class NaiveClient {
  readonly #config: FairnessTrackerConfig;
  readonly #trackerId: string;
  readonly #link: StateLink;
  readonly #random: () => number;
  readonly #decayPerMs: number;
  #window: number;
  #main: Replica;
  #secondary: Replica;

  constructor(
    config: FairnessTrackerConfig,
    trackerId: string,
    link: StateLink,
    random: () => number,
    nowMs: number,
  ) {
    this.#config = config;
    this.#trackerId = trackerId;
    this.#link = link;
    this.#random = random;
    this.#decayPerMs = config.lambda / 1000;
    this.#window = Math.floor(nowMs / config.rotationFrequencyMs);
    this.#main = this.#replica(this.#window);
    this.#secondary = this.#replica(this.#window + 1);
    link.subscribe({
      onStateUpdate: (seed, buckets) => {
        const replica =
          seed === this.#main.seed
            ? this.#main
            : seed === this.#secondary.seed
              ? this.#secondary
              : undefined;
        if (replica === undefined) return;
        for (const b of buckets) {
          const slot = b.rowId * config.m + b.colId;
          replica.probs[slot] = b.prob;
          replica.times[slot] = b.lastUpdateTimeMs;
        }
      },
    });
    void link.requestFullState(this.#main.seed);
    void link.requestFullState(this.#secondary.seed);
  }

  /** Go's register, on both windows: decays (and ships the decay) and decides on main. */
  registerRequest(id: string, nowMs: number): SimDecision {
    this.#advance(nowMs);
    const probabilities = this.#visit(this.#main, id, nowMs, 0);
    this.#visit(this.#secondary, id, nowMs, 0);
    const finalProbability = this.#config.finalProbabilityFunction(probabilities);
    return { shouldThrottle: this.#random() <= finalProbability, finalProbability };
  }

  /** Go's report, on both windows, shipping each bucket's total change. */
  reportOutcome(id: string, outcome: "success" | "failure", nowMs: number): void {
    this.#advance(nowMs);
    const a = outcome === "success" ? -this.#config.pd : this.#config.pi;
    this.#visit(this.#main, id, nowMs, a);
    this.#visit(this.#secondary, id, nowMs, a);
  }

  /** Decays the client's buckets to now, adds `a` (0 for a read), sends the differences. */
  #visit(replica: Replica, id: string, nowMs: number, a: number): number[] {
    const { l, m } = this.#config;
    const columns = bucketIndexesOf(id, this.#config, replica.murmurSeed);
    const probabilities: number[] = [];
    const deltas: BucketDelta[] = [];
    for (let level = 0; level < l; level++) {
      const column = columns[level] as number;
      const slot = level * m + column;
      const before = replica.probs[slot] as number;
      const elapsed = nowMs - (replica.times[slot] as number);
      let p = elapsed > 0 ? before * Math.exp(-this.#decayPerMs * elapsed) : before;
      if (a !== 0) p = clamp01(p + a);
      replica.probs[slot] = p;
      replica.times[slot] = nowMs;
      probabilities.push(p);
      const change = p - before;
      if (change !== 0) {
        deltas.push({ rowId: level, colId: column, deltaProb: change, lastUpdateTimeMs: nowMs });
      }
    }
    if (deltas.length > 0) this.#link.sendDeltaUpdate(replica.seed, deltas);
    return probabilities;
  }

  #advance(nowMs: number): void {
    const window = Math.floor(nowMs / this.#config.rotationFrequencyMs);
    if (window <= this.#window) return;
    this.#main = window === this.#window + 1 ? this.#secondary : this.#replica(window);
    this.#secondary = this.#replica(window + 1);
    this.#window = window;
    void this.#link.requestFullState(this.#secondary.seed);
  }

  #replica(window: number): Replica {
    const seedMs = window * this.#config.rotationFrequencyMs;
    const size = this.#config.l * this.#config.m;
    return {
      seed: BigInt(seedMs),
      murmurSeed: windowMurmurSeed(seedMs, this.#trackerId),
      probs: new Float64Array(size),
      times: new Float64Array(size),
    };
  }
}

/** Clamps to [0, 1] as Go's `Max(0, Min(1, x))` does; NaN propagates. */
function clamp01(x: number): number {
  return Math.max(0, Math.min(1, x));
}
