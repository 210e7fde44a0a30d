// The shared Store contract suite (@fair/state-store-conformance), run
// against RedisStore on the real Redis: each store gets a key prefix of its
// own, removed after the test.
import { describeStoreConformance } from "@fair/state-store-conformance";
import { deleteKeys } from "@fair/testing/redis";
import { describe, inject } from "vitest";
import { redisStoreFactory } from "../test/conformance-store.js";

const url = inject("redisUrl");

describe.skipIf(url === "")("on Redis", () => {
  describeStoreConformance(
    "RedisStore",
    redisStoreFactory(
      "conformance",
      () => ({ url }),
      (keyPrefix) => deleteKeys(url, keyPrefix),
    ),
    { propertyRuns: 15 },
  );
});
