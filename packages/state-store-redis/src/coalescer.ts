import type { ApplyStatus, BucketState, Timers } from "@fair/state-store";
import type { Entries } from "./entry-args.js";

/** What one flush of one (namespace, seed) came to. */
export interface FlushResult {
  readonly status: ApplyStatus;
  readonly buckets: BucketState[];
}

/** What the coalescer asks of the store around it. */
export interface CoalescerDeps<Target> {
  readonly intervalMs: number;
  /** λ per millisecond. */
  readonly decayPerMs: number;
  readonly timers: Timers;
  /** Applies one (target, seed)'s summed entries (`count` of them), timestamps already clamped. */
  apply(target: Target, seed: bigint, entries: Entries, count: number): Promise<FlushResult>;
}

interface Pending<Target> {
  readonly target: Target;
  readonly seed: bigint;
  /** Bucket key → index into the arrays below. */
  readonly index: Map<number, number>;
  readonly keys: number[];
  readonly deltas: number[];
  readonly times: number[];
  readonly waiters: Array<{
    resolve(result: FlushResult): void;
    reject(error: unknown): void;
  }>;
}

/** Entries held at most before a flush comes early, whatever the interval: a bound on memory. */
const maxHeldEntries = 100_000;

/**
 * Sums the adjustments a replica receives per bucket for `intervalMs`
 * before they go to Redis, as a client coalesces its own: adjustments aⱼ
 * at tⱼ to one bucket become Σ aⱼ·e^(−λ(t_max − tⱼ)) stamped t_max, so a hot
 * bucket costs one script entry per interval, not one per delta. The store
 * then clamps once per interval where it would have clamped after each
 * delta — the one difference, which the evaluation measures
 * (docs/evaluation.md). Each `add` resolves with its (namespace, seed)'s
 * flush, or rejects with that flush's error.
 */
export class Coalescer<Target> {
  readonly #deps: CoalescerDeps<Target>;
  #pending = new Map<string, Pending<Target>>();
  #held = 0;
  #timer: unknown;

  constructor(deps: CoalescerDeps<Target>) {
    this.#deps = deps;
  }

  /** Entries waiting for the next flush. */
  get held(): number {
    return this.#held;
  }

  /**
   * Adds `count` validated entries of one (target, seed); `name` tells
   * targets apart. Timestamps must already be clamped.
   */
  add(
    name: string,
    target: Target,
    seed: bigint,
    entries: Entries,
    count: number,
  ): Promise<FlushResult> {
    const id = `${seed} ${name}`;
    let pending = this.#pending.get(id);
    if (pending === undefined) {
      pending = { target, seed, index: new Map(), keys: [], deltas: [], times: [], waiters: [] };
      this.#pending.set(id, pending);
    }
    const lambda = this.#deps.decayPerMs;
    const { index, keys, deltas, times } = pending;
    for (let i = 0; i < count; i++) {
      const key = entries.keys[i] as number;
      const a = entries.deltas[i] as number;
      const t = entries.times[i] as number;
      const at = index.get(key);
      if (at === undefined) {
        index.set(key, keys.length);
        keys.push(key);
        deltas.push(a);
        times.push(t);
        this.#held++;
      } else if (t >= (times[at] as number)) {
        const held = deltas[at] as number;
        const decayed =
          lambda === 0 ? held : held * Math.exp(-lambda * (t - (times[at] as number)));
        deltas[at] = decayed + a;
        times[at] = t;
      } else {
        const late = lambda === 0 ? a : a * Math.exp(-lambda * ((times[at] as number) - t));
        deltas[at] = (deltas[at] as number) + late;
      }
    }
    const result = new Promise<FlushResult>((resolve, reject) => {
      (pending as Pending<Target>).waiters.push({ resolve, reject });
    });
    if (this.#held >= maxHeldEntries) void this.flush();
    else
      this.#timer ??= this.#deps.timers.setTimeout(() => void this.flush(), this.#deps.intervalMs);
    return result;
  }

  /** Sends everything held now; resolves once every flush settled. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) this.#deps.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const batches = [...this.#pending.values()];
    this.#pending = new Map();
    this.#held = 0;
    await Promise.all(
      batches.map(async (pending) => {
        const { target, seed, keys, deltas, times, waiters } = pending;
        try {
          const result = await this.#deps.apply(target, seed, { keys, deltas, times }, keys.length);
          for (const waiter of waiters) waiter.resolve(result);
        } catch (error) {
          for (const waiter of waiters) waiter.reject(error);
        }
      }),
    );
  }
}
