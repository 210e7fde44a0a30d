import { InMemoryStore, type Store } from "@fair/state-store";
import { RedisStore } from "@fair/state-store-redis";
import type { Timers } from "@fair/timers";
import type { StateServerConfig } from "./config-schema.js";

/** What a store made from configuration runs on besides it; injectable for tests. */
export interface StoreEnvironment {
  readonly now?: () => number;
  readonly timers?: Timers;
}

/**
 * The store `config.store` names, with the rules every store shares. The one
 * place that knows which backends exist: the rest of the server sees only
 * the `Store` contract and its optional capabilities.
 */
export function createStoreFromConfig(
  config: StateServerConfig,
  environment: StoreEnvironment = {},
): Store {
  const rules = {
    windowMs: config.windowMs,
    seedEvictionTtlMs: config.seedEvictionTtlMs,
    decayRatePerSecond: config.decayRatePerSecond,
    maxRows: config.maxRows,
    maxCols: config.maxCols,
    maxClockSkewMs: config.maxClockSkewMs,
    maxSeedsPerNamespace: config.maxSeedsPerNamespace,
    maxBucketsPerSeed: config.maxBucketsPerSeed,
    maxNamespaces: config.maxNamespaces,
    learningPeriodMs: config.learningPeriodMs,
    ...(environment.now === undefined ? {} : { now: environment.now }),
    ...(environment.timers === undefined ? {} : { timers: environment.timers }),
  };
  switch (config.store) {
    case "memory":
      return new InMemoryStore(rules);
    case "redis":
      return new RedisStore({
        ...rules,
        mode: config.redisMode,
        url: config.redisUrl,
        sentinelName: config.redisSentinelName,
        ...(config.redisSlotGroups === "auto" ? {} : { slotGroups: config.redisSlotGroups }),
        flushIntervalMs: config.redisFlushIntervalMs,
        keyPrefix: config.redisKeyPrefix,
        commandTimeoutMs: config.redisCommandTimeoutMs,
      });
  }
}
