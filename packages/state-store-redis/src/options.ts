import { randomBytes } from "node:crypto";
import { type InMemoryStoreOptions, StoreError } from "@fair/state-store";
import { type ResolvedStoreOptions, resolveStoreOptions } from "@fair/state-store/internal";

/**
 * Options of {@link RedisStore}: the rules every store shares (window, decay,
 * bounds, clock, timers — as in `InMemoryStoreOptions`, with the same
 * defaults) plus where Redis is and how to talk to it. Every replica on one
 * Redis must use the same `keyPrefix`, window, TTL and decay rate.
 */
export interface RedisStoreOptions extends InMemoryStoreOptions {
  /**
   * The Redis (or Valkey) 7+ server: `redis://[[user]:password@]host[:port][/db]`,
   * or `rediss://` for TLS. Default `redis://127.0.0.1:6379`.
   */
  url: string;
  /**
   * Prepended to every key and to the pub/sub channel, so several services
   * (or test runs) share one Redis without meeting. No whitespace or braces.
   * Default `fair:`.
   */
  keyPrefix: string;
  /**
   * This replica's name in the changes it publishes, so it can tell its own
   * messages from the others'. Default: 12 random hex characters; set it
   * only if you need a stable name in Redis's pub/sub traffic.
   */
  replicaId: string;
  /**
   * How long a Redis command may take before it fails (and the update or
   * full-state request that needed it fails with `unavailable`), in
   * milliseconds. Default 2 000.
   */
  commandTimeoutMs: number;
  /** How long one connection attempt may take, in milliseconds. Default 5 000. */
  connectTimeoutMs: number;
  /**
   * The longest pause between reconnection attempts, in milliseconds; the
   * pause doubles from 50 ms up to this. Default 2 000.
   */
  maxReconnectDelayMs: number;
}

/** The defaults of the Redis-specific {@link RedisStoreOptions}. */
export const defaultRedisStoreOptions: Readonly<
  Pick<
    RedisStoreOptions,
    "url" | "keyPrefix" | "commandTimeoutMs" | "connectTimeoutMs" | "maxReconnectDelayMs"
  >
> = Object.freeze({
  url: "redis://127.0.0.1:6379",
  keyPrefix: "fair:",
  commandTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  maxReconnectDelayMs: 2_000,
});

/** The options after defaults and checks, with the shared rules resolved. */
export interface ResolvedRedisOptions {
  readonly rules: ResolvedStoreOptions;
  readonly url: string;
  readonly keyPrefix: string;
  readonly replicaId: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxReconnectDelayMs: number;
}

/** Fills in defaults; refuses unusable options with a `StoreError` (`invalid_option`). */
export function resolveRedisOptions(partial: Partial<RedisStoreOptions>): ResolvedRedisOptions {
  const rules = resolveStoreOptions(partial);
  const d = defaultRedisStoreOptions;
  const url = partial.url ?? d.url;
  if (typeof url !== "string" || !/^rediss?:\/\//.test(url)) {
    throw new StoreError("invalid_option", "url", `must be a redis:// or rediss:// URL`);
  }
  const keyPrefix = partial.keyPrefix ?? d.keyPrefix;
  // Braces would change the keys' hash tags; whitespace would break the
  // space-separated index members and messages.
  if (typeof keyPrefix !== "string" || /[\s{}]/.test(keyPrefix)) {
    throw new StoreError(
      "invalid_option",
      "keyPrefix",
      `must be a string without whitespace or braces, got ${JSON.stringify(keyPrefix)}`,
    );
  }
  const replicaId = partial.replicaId ?? randomBytes(6).toString("hex");
  if (typeof replicaId !== "string" || !/^[\w.-]{1,64}$/.test(replicaId)) {
    throw new StoreError("invalid_option", "replicaId", "must be 1–64 of [A-Za-z0-9_.-]");
  }
  const resolved = {
    rules,
    url,
    keyPrefix,
    replicaId,
    commandTimeoutMs: partial.commandTimeoutMs ?? d.commandTimeoutMs,
    connectTimeoutMs: partial.connectTimeoutMs ?? d.connectTimeoutMs,
    maxReconnectDelayMs: partial.maxReconnectDelayMs ?? d.maxReconnectDelayMs,
  };
  for (const field of ["commandTimeoutMs", "connectTimeoutMs", "maxReconnectDelayMs"] as const) {
    const value = resolved[field];
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
      throw new StoreError("invalid_option", field, `must be an integer in [1, 2^31 − 1] ms`);
    }
  }
  return Object.freeze(resolved);
}
