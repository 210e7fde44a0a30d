// What every conformance run of RedisStore shares (src/*.conformance.test.ts):
// a store under a key prefix of its own, started and ready, whose keys go
// when the suite disposes of it.
import type { StoreFactory } from "@fair/state-store-conformance";
import { uniqueKeyPrefix } from "@fair/testing/redis";
import { RedisStore, type RedisStoreOptions } from "../src/index.js";

/**
 * A factory for `describeStoreConformance`: stores made with `connection`
 * (mode, URL, slot groups…) on top of the suite's options, and `cleanup`
 * deleting a store's keys by prefix once it stopped.
 */
export function redisStoreFactory(
  label: string,
  connection: () => Partial<RedisStoreOptions>,
  cleanup: (keyPrefix: string) => Promise<unknown>,
): StoreFactory {
  return async (options) => {
    const keyPrefix = uniqueKeyPrefix(label);
    const store = new RedisStore({ ...options, ...connection(), keyPrefix });
    store.start();
    await store.whenReady();
    return {
      store,
      async dispose() {
        await store.stop();
        await cleanup(keyPrefix);
      },
    };
  };
}
