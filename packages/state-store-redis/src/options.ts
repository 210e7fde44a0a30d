import { randomBytes } from "node:crypto";
import { type InMemoryStoreOptions, StoreError } from "@fair/state-store";
import { type ResolvedStoreOptions, resolveStoreOptions } from "@fair/state-store/internal";
import { maxSlotGroups } from "./keys.js";

/** How the store reaches Redis. */
export type RedisMode = "standalone" | "cluster" | "sentinel";

const modes: readonly RedisMode[] = ["standalone", "cluster", "sentinel"];

/**
 * Options of {@link RedisStore}: the rules every store shares (window, decay,
 * bounds, clock, timers — as in `InMemoryStoreOptions`, with the same
 * defaults) plus where Redis is and how to talk to it. Every replica on one
 * Redis must use the same `keyPrefix`, window, TTL and decay rate.
 */
export interface RedisStoreOptions extends InMemoryStoreOptions {
  /**
   * How Redis is deployed: `standalone` (one server, or a primary with
   * replicas you fail over yourself), `cluster` (Redis Cluster: `url` lists
   * seed nodes) or `sentinel` (`url` lists Sentinels, which name the
   * primary of `sentinelName`). Default `standalone`.
   */
  mode: RedisMode;
  /**
   * The Redis (or Valkey) 7+ server: `redis://[[user]:password@]host[:port][/db]`,
   * or `rediss://` for TLS; in `cluster` and `sentinel` mode, one URL or
   * several separated by commas (seed nodes, Sentinels). Default
   * `redis://127.0.0.1:6379`.
   */
  url: string;
  /** The primary's name in Sentinel (`sentinel monitor <name> …`), in `sentinel` mode. Default `fair`. */
  sentinelName: string;
  /**
   * Slot groups the buckets are spread over (docs/decisions/0011): 1 to
   * 256. Each group's keys share a hash tag, so one group lives on one
   * Cluster node and is written by one atomic script; a hot seed spreads
   * over every group. Default 1 in `standalone` and `sentinel` mode (one
   * Redis core gains nothing from more), 16 in `cluster` mode. Every
   * replica on one prefix must use the same count (it is part of every
   * key's name, so replicas that disagree never share keys).
   */
  slotGroups: number;
  /**
   * How long this replica sums the adjustments it receives per bucket
   * before it sends them to Redis, in milliseconds; 0 sends every update at
   * once. Several adjustments aⱼ at tⱼ to one bucket are sent as one,
   * Σ aⱼ·e^(−λ(t_max − tⱼ)/1000) stamped t_max, as a client coalesces, so a
   * hot bucket costs Redis one entry per interval. An update resolves once
   * its interval is applied. Default 0.
   */
  flushIntervalMs: number;
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
    | "mode"
    | "url"
    | "sentinelName"
    | "flushIntervalMs"
    | "keyPrefix"
    | "commandTimeoutMs"
    | "connectTimeoutMs"
    | "maxReconnectDelayMs"
  >
> = Object.freeze({
  mode: "standalone",
  url: "redis://127.0.0.1:6379",
  sentinelName: "fair",
  flushIntervalMs: 0,
  keyPrefix: "fair:",
  commandTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  maxReconnectDelayMs: 2_000,
});

/** The options after defaults and checks, with the shared rules resolved. */
export interface ResolvedRedisOptions {
  readonly rules: ResolvedStoreOptions;
  readonly mode: RedisMode;
  /** `url` as given. */
  readonly url: string;
  /** Every URL `url` lists. */
  readonly urls: readonly URL[];
  readonly sentinelName: string;
  readonly slotGroups: number;
  readonly flushIntervalMs: number;
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
  const mode = partial.mode ?? d.mode;
  if (!modes.includes(mode)) {
    throw new StoreError(
      "invalid_option",
      "mode",
      `must be one of ${modes.join(", ")}, got ${JSON.stringify(mode)}`,
    );
  }
  const url = partial.url ?? d.url;
  const urls = parseUrls(url, mode);
  const sentinelName = partial.sentinelName ?? d.sentinelName;
  if (typeof sentinelName !== "string" || sentinelName === "") {
    throw new StoreError("invalid_option", "sentinelName", "must be a non-empty string");
  }
  const slotGroups = partial.slotGroups ?? (mode === "cluster" ? 16 : 1);
  if (!Number.isInteger(slotGroups) || slotGroups < 1 || slotGroups > maxSlotGroups) {
    throw new StoreError(
      "invalid_option",
      "slotGroups",
      `must be an integer in [1, ${maxSlotGroups}], got ${slotGroups}`,
    );
  }
  const flushIntervalMs = partial.flushIntervalMs ?? d.flushIntervalMs;
  if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0 || flushIntervalMs > 1_000) {
    throw new StoreError(
      "invalid_option",
      "flushIntervalMs",
      `must be an integer in [0, 1000] ms, got ${flushIntervalMs}`,
    );
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
    mode,
    url,
    urls,
    sentinelName,
    slotGroups,
    flushIntervalMs,
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

/** The URLs of `url`: exactly one in `standalone` mode, one or more (comma-separated) otherwise. */
function parseUrls(url: unknown, mode: RedisMode): URL[] {
  const wrong = (detail: string) =>
    new StoreError("invalid_option", "url", `${detail} (mode ${mode})`);
  if (typeof url !== "string" || url.trim() === "") {
    throw wrong("must be a redis:// or rediss:// URL");
  }
  const parts = url.split(",").map((part) => part.trim());
  if (mode === "standalone" && parts.length > 1) {
    throw wrong(
      `lists ${parts.length} URLs, but standalone mode takes one; set mode to cluster (seed nodes) or sentinel (Sentinels) for a list`,
    );
  }
  return parts.map((part) => {
    let parsed: URL;
    try {
      parsed = new URL(part);
    } catch {
      throw wrong(`${JSON.stringify(part)} is not a URL; expected redis://host:port`);
    }
    if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
      throw wrong(`${JSON.stringify(part)} must be a redis:// or rediss:// URL`);
    }
    return parsed;
  });
}
