/**
 * `@fair/state-store-conformance`: the `Store` contract as one vitest suite,
 * parameterised by a store factory, so every implementation (in memory,
 * Redis, yours) is held to the same semantics. A test-only package:
 * install it as a devDependency, beside `vitest` and `fast-check` (its peer
 * dependencies).
 *
 * @example
 * ```ts
 * import { InMemoryStore } from "@fair/state-store";
 * import { describeStoreConformance } from "@fair/state-store-conformance";
 *
 * describeStoreConformance("InMemoryStore", (options) => ({ store: new InMemoryStore(options) }));
 * ```
 *
 * @packageDocumentation
 */

export type {
  ConformanceOptions,
  ConformanceStoreOptions,
  StoreFactory,
  StoreUnderTest,
} from "./suite.js";
export { describeStoreConformance } from "./suite.js";
