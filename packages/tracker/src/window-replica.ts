import type { BucketValue } from "@fair/state-client";
import { clamp01 } from "./decay.js";

/**
 * A distributed tracker's local copy of one window's structure (docs/design.md §3): per bucket a
 * probability and the time it refers to, the pair the State Service stores. The default
 * bucket is {0, 0}. Reads decay without writing; outcomes and broadcasts write. The arithmetic
 * mirrors the State Service's store (`@fair/state-store`) operation for operation, so that with
 * no delay an instance's replica and the server agree bit for bit.
 */
export class WindowReplica {
  /** The window's start, Unix ms: the wire seed. */
  readonly seedMs: number;
  /** {@link seedMs} as the link's `bigint`. */
  readonly seed: bigint;
  /** The murmur seed for this window (`windowMurmurSeed`). */
  readonly murmurSeed: number;
  readonly #probs: Float64Array;
  readonly #times: Float64Array;

  constructor(seedMs: number, murmurSeed: number, buckets: number) {
    this.seedMs = seedMs;
    this.seed = BigInt(seedMs);
    this.murmurSeed = murmurSeed;
    this.#probs = new Float64Array(buckets);
    this.#times = new Float64Array(buckets);
  }

  /** Bucket `slot` as of `nowMs`: `P · e^(−λ·max(0, now − T)/1000)`, changing nothing. */
  read(slot: number, nowMs: number, decayPerMs: number): number {
    const p = this.#probs[slot] as number;
    const elapsed = nowMs - (this.#times[slot] as number);
    // Another host's clock may be ahead: a negative interval is no decay, never a huge one.
    return elapsed > 0 && decayPerMs !== 0 && p !== 0 ? p * Math.exp(-decayPerMs * elapsed) : p;
  }

  /**
   * Applies adjustment `a` stamped `nowMs` as the server does: in order, decay to `nowMs`,
   * add, clamp, stamp; late (the bucket's time is ahead of ours), add `a` decayed to the
   * bucket's time and keep its time.
   */
  apply(slot: number, a: number, nowMs: number, decayPerMs: number): void {
    const probs = this.#probs;
    const times = this.#times;
    const p = probs[slot] as number;
    const t = times[slot] as number;
    if (p === 0) {
      // The server forgets a bucket at 0, so it is the default {0, 0} there: start afresh.
      probs[slot] = clamp01(a);
      times[slot] = nowMs;
    } else if (nowMs >= t) {
      const decayed = nowMs === t || decayPerMs === 0 ? p : p * Math.exp(-decayPerMs * (nowMs - t));
      probs[slot] = clamp01(decayed + a);
      times[slot] = nowMs;
    } else {
      probs[slot] = clamp01(p + (decayPerMs === 0 ? a : a * Math.exp(-decayPerMs * (t - nowMs))));
    }
  }

  /** Overwrites bucket `slot` with the server's value: the server is authoritative. */
  overwrite(slot: number, prob: number, timeMs: number): void {
    this.#probs[slot] = prob;
    this.#times[slot] = timeMs;
  }

  /**
   * Every non-default bucket as it is held, each as of its own time (never decayed here): what
   * the tracker offers a State Service in a new epoch. `m` is the buckets per level.
   */
  held(m: number): BucketValue[] {
    const probs = this.#probs;
    const times = this.#times;
    const out: BucketValue[] = [];
    for (let slot = 0; slot < probs.length; slot++) {
      const prob = probs[slot] as number;
      if (prob === 0) continue;
      const rowId = Math.floor(slot / m);
      out.push({ rowId, colId: slot - rowId * m, prob, lastUpdateTimeMs: times[slot] as number });
    }
    return out;
  }
}
