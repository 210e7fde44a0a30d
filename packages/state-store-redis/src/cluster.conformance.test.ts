// The shared Store contract suite (@fair/state-store-conformance), run
// against RedisStore on a real Redis Cluster (3 primaries, 3 replicas:
// `pnpm redis:cluster start`, which .ci/run does): once with the cluster
// default of 16 slot groups, the buckets of every seed spread over the
// three primaries, and once with one group. Limits are exact only within
// a group (docs/decisions/0011), so the 16-group run leaves the limits
// module out; the one-group run keeps it.
import { describeStoreConformance } from "@fair/state-store-conformance";
import { deleteClusterKeys } from "@fair/testing/redis-cluster";
import { describe, inject } from "vitest";
import { redisStoreFactory } from "../test/conformance-store.js";

const url = inject("redisClusterUrl");

describe.skipIf(url === "")("on a Redis Cluster", () => {
  for (const slotGroups of [16, 1]) {
    describeStoreConformance(
      `RedisStore in cluster mode, ${slotGroups} slot group${slotGroups === 1 ? "" : "s"}`,
      redisStoreFactory(
        "cluster",
        () => ({ mode: "cluster", url, slotGroups }),
        (keyPrefix) => deleteClusterKeys(url, keyPrefix),
      ),
      { propertyRuns: 10, exactLimits: slotGroups === 1 },
    );
  }
});
