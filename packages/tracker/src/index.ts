/**
 * `@fair/tracker`: FAIR, the fairness throttler (Stochastic Fair BLUE), ported from the Go
 * library bit for bit, with a distributed mode that shares state through the FAIR State
 * Service over a `StateLink`.
 *
 * @example
 * ```ts
 * import { FairnessTracker, defaultFairnessTrackerConfig } from "@fair/tracker";
 *
 * const tracker = new FairnessTracker(defaultFairnessTrackerConfig());
 * if (!tracker.registerRequest("client-42").shouldThrottle) {
 *   tracker.reportOutcome("client-42", (await tryTheResource()) ? "success" : "failure");
 * }
 * ```
 *
 * @packageDocumentation
 */

export type { Timers } from "@fair/timers";
export { bucketIndexesOf } from "./bucket-index.js";
export { FairnessTrackerBuilder } from "./builder.js";
export type { ClientId } from "./client-id.js";
export type { FairnessTrackerConfig, FinalProbabilityFunction } from "./config.js";
export type { StructureIds, SyncStats } from "./engine.js";
export type { FairnessTrackerErrorCode } from "./errors.js";
export { FairnessTrackerError } from "./errors.js";
export type { ExplainedBucket, Explanation, StoredBucket, TrackerShape } from "./explain.js";
export {
  bucketKey,
  clientColumns,
  decayedTo,
  explainClient,
  hottestBuckets,
  windowSeedOf,
} from "./explain.js";
export { meanFinalProbability, minFinalProbability } from "./final-probability.js";
export type { DistributedOptions, FairnessTrackerOptions, TrackerTimers } from "./options.js";
export { defaultTrackerOptions } from "./options.js";
export type { Decision, Outcome, RegisterRequestResult, ResultStats } from "./results.js";
export { FairnessTracker } from "./tracker.js";
export {
  calculateL,
  defaultFairnessTrackerConfig,
  generateTunedStructureConfig,
  goPowInt,
} from "./tuning.js";
export { windowMurmurSeed } from "./window-seed.js";
