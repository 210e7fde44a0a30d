/**
 * `@fair/state-store`: aggregates FAIR bucket deltas from many instances into
 * one shared view — server-owned decay, clamping, seed windows, eviction and
 * snapshots — behind a `Store` interface that a remote store can implement
 * too.
 *
 * @example
 * ```ts
 * import { InMemoryStore, windowSeed } from "@fair/state-store";
 *
 * const store = new InMemoryStore();
 * const seed = windowSeed(Date.now(), store.options.windowMs);
 * const { bucket } = store.applyDelta(seed, 0, 42, 0.05, Date.now());
 * ```
 *
 * @packageDocumentation
 */

export type { Timers } from "@fair/timers";
export type { StoreErrorCode } from "./errors.js";
export { StoreError } from "./errors.js";
export type { InMemoryNamespace } from "./memory-store.js";
export { InMemoryStore } from "./memory-store.js";
export type { InMemoryStoreOptions, StoreTimers } from "./options.js";
export { defaultStoreOptions } from "./options.js";
export { snapshotFormatVersion } from "./snapshot-encoder.js";
export type {
  ApplyStatus,
  BucketDeltaInput,
  BucketInput,
  BucketState,
  DeltaResult,
  DeltaUpdateInput,
  DropReason,
  EvictResult,
  MaybePromise,
  OfferResult,
  OfferStatus,
  RestoreResult,
  SeedCursor,
  SeedPage,
  StateOfferInput,
  Store,
  StoreLimit,
  StoreNamespace,
  StoreStats,
  UpdateResult,
} from "./store.js";
export type {
  ChangeListener,
  StoreChangeFeed,
  StoreEpoch,
  StoreEpochs,
  StoreMetrics,
  StorePersistence,
  StoreReadiness,
} from "./store-capabilities.js";
export { isLearning } from "./store-capabilities.js";
export { windowSeed } from "./window-seed.js";
