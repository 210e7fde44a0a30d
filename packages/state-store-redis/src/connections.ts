import { Cluster, type ClusterOptions, Redis } from "ioredis";
import type { ResolvedRedisOptions } from "./options.js";
import { scripts } from "./scripts.js";

/** A connection to Redis in any mode: one server (or its Sentinel-named primary), or a Cluster. */
export type RedisClient = Redis | Cluster;

/** The store's two ways to Redis: commands, and the change channels. */
export interface Connections {
  readonly command: RedisClient;
  readonly subscriber: RedisClient;
  /** Where Redis is, for messages: `127.0.0.1:6379`, `cluster 10.0.0.5:6379,…`, `sentinel fair at …`. */
  readonly describe: string;
}

/**
 * Opens (lazily: `connect()` them) the command and subscriber connections
 * for the store's mode. Commands fail at once while disconnected rather
 * than queue: a stream's update must fail fast (UNAVAILABLE) so its client
 * retries, and nothing waits behind an outage.
 */
export function openConnections(options: ResolvedRedisOptions, replicaId: string): Connections {
  const connections = connect(options, replicaId);
  for (const client of [connections.command, connections.subscriber]) {
    for (const { command, keys, source } of scripts) {
      client.defineCommand(command, { lua: source, numberOfKeys: keys });
    }
  }
  return connections;
}

function connect(options: ResolvedRedisOptions, replicaId: string): Connections {
  const { mode, urls, commandTimeoutMs, connectTimeoutMs, maxReconnectDelayMs } = options;
  const retryStrategy = (times: number) =>
    Math.min(50 * 2 ** Math.min(times, 16), maxReconnectDelayMs);
  const first = urls[0] as URL;
  const credentials = {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === "rediss:" ? { tls: {} } : {}),
  };
  const common = {
    ...credentials,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    retryStrategy,
  };
  const hosts = urls.map((url) => ({ host: url.hostname, port: Number(url.port || 6379) }));
  const list = hosts.map(({ host, port }) => `${host}:${port}`).join(",");
  if (mode === "cluster") {
    const cluster = (
      name: string,
      extra: Pick<ClusterOptions, "enableAutoPipelining" | "shardedSubscribers">,
    ) =>
      new Cluster(hosts, {
        lazyConnect: true,
        enableOfflineQueue: false,
        scaleReads: "master",
        clusterRetryStrategy: retryStrategy,
        // A failover or a migration answers MOVED, ASK, TRYAGAIN or
        // CLUSTERDOWN for a moment: follow and retry within the command
        // timeout rather than fail the update.
        maxRedirections: 16,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        redisOptions: { ...common, connectionName: name, maxRetriesPerRequest: 3 },
        ...extra,
      });
    return {
      command: cluster(`fair-state:${replicaId}`, { enableAutoPipelining: true }),
      subscriber: cluster(`fair-state:${replicaId}:sub`, { shardedSubscribers: true }),
      describe: `Redis Cluster at ${list}`,
    };
  }
  const target =
    mode === "sentinel"
      ? { sentinels: hosts, name: options.sentinelName }
      : {
          host: first.hostname,
          port: Number(first.port || 6379),
          db: Number(first.pathname.slice(1) || 0),
        };
  const describe =
    mode === "sentinel"
      ? `Redis primary "${options.sentinelName}" of Sentinels ${list}`
      : `Redis at ${list}`;
  return {
    command: new Redis({
      ...common,
      ...target,
      connectionName: `fair-state:${replicaId}`,
      enableAutoPipelining: true,
    }),
    subscriber: new Redis({
      ...common,
      ...target,
      connectionName: `fair-state:${replicaId}:sub`,
      // Resubscribed by hand, so the resync can follow the subscription.
      autoResubscribe: false,
    }),
    describe,
  };
}
