import { goExp } from "./go-exp.js";

/**
 * Go's `adjustProbability`: `p` decayed exponentially at `lambda` per second over `deltaMs`
 * milliseconds, `p · e^(−λ · Δ/1000)`, with Go's own `Exp` ({@link goExp}). The divisor is exactly 1000 and the seconds are
 * fractional. No clamp is applied (only outcomes clamp); a negative result, impossible for
 * p ≥ 0, becomes 0 as in Go.
 */
export function adjustProbability(p: number, lambda: number, deltaMs: number): number {
  // Shortcuts that give Go's result exactly: 0 · e^x = 0 and p · e^0 = p. Most buckets a
  // request visits are 0, and the exponential is most of a visit's cost.
  if (p === 0 || deltaMs === 0) return p;
  const decayed = p * goExp(-lambda * (deltaMs / 1000));
  return Math.max(0, decayed);
}

/** Clamps to [0, 1] as Go's `Max(0, Min(1, x))`; NaN propagates. */
export function clamp01(x: number): number {
  return Math.max(0, Math.min(1, x));
}
