import { StoreError } from "./errors.js";

/**
 * The seed of the window containing `timeMs`: the window's start in Unix
 * milliseconds, `floor(timeMs / windowMs) · windowMs`, as the exact `bigint`
 * the store and the wire use (docs/design.md §3).
 *
 * @example
 * ```ts
 * windowSeed(1_764_137_012_345, 300_000); // 1_764_136_800_000n
 * ```
 */
export function windowSeed(timeMs: number, windowMs: number): bigint {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
    throw new StoreError("invalid_argument", "windowMs", `must be an integer ≥ 1, got ${windowMs}`);
  }
  if (!Number.isFinite(timeMs) || timeMs < 0) {
    throw new StoreError("invalid_argument", "timeMs", `must be finite and ≥ 0, got ${timeMs}`);
  }
  return BigInt(Math.floor(timeMs / windowMs)) * BigInt(windowMs);
}
