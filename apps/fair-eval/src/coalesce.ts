// The coalescing rule of `@fair/state-client`'s `PendingDeltas` (docs/design.md §3), which that
// package does not export: several adjustments `aⱼ` at times `tⱼ` to one bucket become one,
// `Σ aⱼ·e^(−λ(t_max − tⱼ)/1000)` stamped `t_max`. The simulation uses it twice: for what a
// disconnected link holds, and for what a store replica sums per flush interval (`storeFlushMs`).

/** A bucket's coalesced adjustment, as of `timeMs`. */
export interface Coalesced {
  sum: number;
  timeMs: number;
}

/**
 * Adds adjustment `deltaProb` stamped `timeMs` to `into`, in place, with decay `decayPerMs`
 * (λ / 1000). A later adjustment decays the sum to its time and moves the stamp; an earlier one
 * is decayed to the stamp. Exact for the linear part of the store's rule; nothing is clamped.
 */
export function coalesce(
  into: Coalesced,
  deltaProb: number,
  timeMs: number,
  decayPerMs: number,
): void {
  if (timeMs >= into.timeMs) {
    into.sum = into.sum * Math.exp(-decayPerMs * (timeMs - into.timeMs)) + deltaProb;
    into.timeMs = timeMs;
  } else {
    into.sum += deltaProb * Math.exp(-decayPerMs * (into.timeMs - timeMs));
  }
}
