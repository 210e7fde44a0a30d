// The shared Store contract suite (@fair/state-store-conformance), run
// against RedisStore on the real Redis: each store gets a key prefix of its
// own, removed after the test.
import { describeStoreConformance } from "@fair/state-store-conformance";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { describe, inject } from "vitest";
import { RedisStore } from "./index.js";

const url = inject("redisUrl");

describe.skipIf(url === "")("on Redis", () => {
  describeStoreConformance(
    "RedisStore",
    async (options) => {
      const keyPrefix = uniqueKeyPrefix("conformance");
      const store = new RedisStore({ ...options, url, keyPrefix });
      store.start();
      await store.whenReady();
      return {
        store,
        async dispose() {
          await store.stop();
          await deleteKeys(url, keyPrefix);
        },
      };
    },
    { propertyRuns: 15 },
  );
});
