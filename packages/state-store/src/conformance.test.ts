// The shared Store contract suite, run against the in-memory store. The
// Redis store runs the same suite in @fair/state-store-redis.

import { describeStoreConformance } from "./conformance/index.js";
import { InMemoryStore } from "./index.js";

describeStoreConformance("InMemoryStore", (options) => ({ store: new InMemoryStore(options) }));
