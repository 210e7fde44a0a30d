// The shared Store contract suite (@fair/state-store-conformance), run
// against RedisStore in sentinel mode: a primary, its replica and a Sentinel
// of this file's own (real redis-server processes on free loopback ports,
// @fair/testing/redis-cluster), the store finding the primary through the
// Sentinel. One slot group, so the limits are exact and the whole suite runs.
import { describeStoreConformance } from "@fair/state-store-conformance";
import { deleteKeys } from "@fair/testing/redis";
import { type PrivateSentinel, startPrivateSentinel } from "@fair/testing/redis-cluster";
import { afterAll, beforeAll, describe, inject } from "vitest";
import { redisStoreFactory } from "../test/conformance-store.js";

// The shared Cluster's presence says redis-server is installed (and CI requires it).
const run = inject("redisClusterUrl") !== "";
let sentinel: PrivateSentinel | undefined;

describe.skipIf(!run)("on a primary found through Redis Sentinel", () => {
  beforeAll(async () => {
    sentinel = await startPrivateSentinel();
  }, 30_000);
  afterAll(() => sentinel?.stop());

  describeStoreConformance(
    "RedisStore in sentinel mode",
    redisStoreFactory(
      "sentinel",
      () => {
        const { sentinelUrl, masterName } = sentinel as PrivateSentinel;
        return { mode: "sentinel", url: sentinelUrl, sentinelName: masterName };
      },
      async (keyPrefix) => {
        const primary = await (sentinel as PrivateSentinel).primaryPort();
        await deleteKeys(`redis://127.0.0.1:${primary}`, keyPrefix);
      },
    ),
    { propertyRuns: 10 },
  );
});
