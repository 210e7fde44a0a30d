/**
 * `@fair/state-store-redis`: the FAIR State Service's `Store` on Redis (or
 * Valkey) 7+, so several stateless server replicas share one view. Same
 * semantics as `InMemoryStore` (one conformance suite runs on both), learning
 * mode (`applyOffer`) included, plus the `Store` contract's readiness, change
 * feed (every replica's applied buckets, carried to the others), epochs (one
 * epoch key per prefix, renewed when Redis loses its data) and metrics
 * capabilities.
 *
 * @example
 * ```ts
 * import { RedisStore } from "@fair/state-store-redis";
 *
 * const store = new RedisStore({ url: "redis://127.0.0.1:6379" });
 * store.onChange((namespace, seed, buckets) => hub.publish(namespace, seed, buckets));
 * store.start();
 * await store.whenReady();
 * ```
 *
 * @packageDocumentation
 */

export type { ChangeListener } from "@fair/state-store";
export type { RedisStoreOptions, ResolvedRedisOptions } from "./options.js";
export { defaultRedisStoreOptions } from "./options.js";
export type {
  OperationListener,
  RedisNamespace,
  RedisOperation,
  RedisStats,
} from "./redis-store.js";
export { RedisStore } from "./redis-store.js";
