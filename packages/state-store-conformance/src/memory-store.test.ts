// The suite on the reference implementation, the in-memory store. The Redis
// store runs the same suite in @fair/state-store-redis.

import { InMemoryStore } from "@fair/state-store";
import { describeStoreConformance } from "./index.js";

describeStoreConformance("InMemoryStore", (options) => ({ store: new InMemoryStore(options) }));
