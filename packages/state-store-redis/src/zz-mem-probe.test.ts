import { create } from "@bufbuild/protobuf";
import { DeltaUpdateSchema } from "@fair/state-proto";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { test } from "vitest";
import { RedisStore } from "./index.js";

test("memory probe", async () => {
  const url = "redis://127.0.0.1:6379";
  const raw = new Redis(url);
  for (const [slotGroups, rows, cols] of [
    [1, 3, 1000],
    [16, 3, 1000],
    [1, 4, 65536],
    [16, 4, 65536],
  ] as const) {
    const keyPrefix = uniqueKeyPrefix("mem");
    const store = new RedisStore({ url, keyPrefix, slotGroups, maxBucketsPerSeed: 1 << 22 });
    store.start();
    await store.whenReady();
    const seed = BigInt(Math.floor(Date.now() / 300_000) * 300_000);
    const now = Date.now();
    for (let r = 0; r < rows; r++) {
      for (let c0 = 0; c0 < cols; c0 += 1000) {
        await store.applyUpdate(
          create(DeltaUpdateSchema, {
            seed,
            deltas: Array.from({ length: Math.min(1000, cols - c0) }, (_, j) => ({
              rowId: BigInt(r),
              colId: BigInt(c0 + j),
              deltaProb: 0.01 + ((c0 + j) % 7) / 100,
              lastUpdateTimeMs: BigInt(now),
            })),
          }),
        );
      }
    }
    let bytes = 0;
    let cursor = "0";
    do {
      const [next, keys] = await raw.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
      for (const key of keys) bytes += Number(await raw.memory("USAGE", key, "SAMPLES", "0"));
      cursor = next;
    } while (cursor !== "0");
    console.log(
      `groups ${slotGroups}, ${rows * cols} buckets: ${(bytes / (rows * cols)).toFixed(1)} B/bucket`,
    );
    await store.stop();
    await deleteKeys(url, keyPrefix);
  }
  raw.disconnect();
}, 120_000);
