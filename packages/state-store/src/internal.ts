/**
 * `@fair/state-store/internal`: the in-memory store's own rules, for the
 * other `Store` implementations of this workspace (`@fair/state-store-redis`)
 * — option resolution, validation, the seed-window rule, the counters and
 * the limit refusal — so every store refuses, drops and counts exactly the
 * same input. Internal: not covered by semver, may change in any release.
 * Build a store on the package root's `Store` contract instead.
 *
 * @packageDocumentation
 */

export type { StoreCounts } from "./counters.js";
export { StoreCounters } from "./counters.js";
export { limitExceededError } from "./limits.js";
export type { ResolvedStoreOptions } from "./options.js";
export { resolveStoreOptions } from "./options.js";
export { readStoreClock, SeedRange } from "./seed-range.js";
export { checkSeed, DeltaBatch, validateDelta, validateOffer, validateUpdate } from "./validate.js";
