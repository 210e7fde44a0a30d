import { setMaxListeners } from "node:events";
import type { ConnectRouter } from "@connectrpc/connect";
import { compressionGzip } from "@connectrpc/connect-node";
import { Hub } from "@fair/state-broadcast";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import { InMemoryStore, type StoreTimers } from "@fair/state-store";
import { RedisStore } from "@fair/state-store-redis";
import type { StateServerConfig } from "./config-schema.js";
import { HealthStatus } from "./health.js";
import { createMetrics, type StateServerMetrics } from "./metrics.js";
import { registerSyncService, SyncService } from "./sync-service.js";

/**
 * The stores a server runs on: one process's memory, or Redis shared by
 * several replicas. `config.store` picks one; tests and embedders may hand
 * one in.
 */
export type ServerStore = InMemoryStore | RedisStore;

/** What a state server is made of besides its configuration; all injectable for tests. */
export interface StateServerOptions {
  readonly config: StateServerConfig;
  /** The clock, Unix milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /** Timers for eviction, broadcast flushes and stall sweeps. Default the global ones (unref'd). */
  readonly timers?: StoreTimers;
  /**
   * The store to serve instead of the one `config.store` describes. The
   * server starts and stops it. Default: made from the configuration.
   */
  readonly store?: ServerStore;
}

/**
 * The State Service without its listeners: the store, the hub, health and
 * metrics, and the Connect routes that serve them. `serveStateServer` puts
 * it on sockets; embedders can mount {@link StateServer.routes} themselves.
 */
export interface StateServer {
  readonly config: StateServerConfig;
  readonly store: ServerStore;
  readonly hub: Hub;
  readonly health: HealthStatus;
  readonly metrics: StateServerMetrics;
  /** The `Sync` streams, for the Connect routes and the gRPC path alike. */
  readonly sync: SyncService;
  /** Registers `Sync` and `grpc.health.v1.Health` on a router. */
  readonly routes: (router: ConnectRouter) => void;
  /** Options for `connectNodeAdapter`: limits, compression, the shutdown signal. */
  readonly handlerOptions: {
    readonly acceptCompression: (typeof compressionGzip)[];
    readonly readMaxBytes: number;
    readonly writeMaxBytes: number;
    readonly shutdownSignal: AbortSignal;
  };
  /**
   * Starts the hub, then the store (eviction; on Redis, connecting), and
   * reports SERVING — on Redis, once the store is ready, and NOT_SERVING
   * whenever it is not.
   */
  start(): void;
  /**
   * Reports NOT_SERVING, then stops the hub (every Sync stream ends with
   * UNAVAILABLE so its client reconnects), aborts health watches and stops
   * the store. Idempotent; resolves once the store has let go of its
   * connections.
   */
  stop(): Promise<void>;
}

/** Wires store, hub, health and metrics from a configuration. */
export function createStateServer(options: StateServerOptions): StateServer {
  const { config } = options;
  const clock = options.now === undefined ? {} : { now: options.now };
  const timers = options.timers === undefined ? {} : { timers: options.timers };
  const store = options.store ?? createStore(config, { ...clock, ...timers });
  const hub = new Hub({ broadcastIntervalMs: config.broadcastInterval, ...clock, ...timers });
  const health = new HealthStatus();
  const metrics = createMetrics({
    storeStats: () => store.stats(),
    hubStats: () => hub.stats(),
    serving: () => health.serving,
    redisStats: store instanceof RedisStore ? () => store.redisStats() : undefined,
  });
  const shutdown = new AbortController();
  // Connect links every request's signal to this one: one "abort" listener
  // per open stream or health watch, removed when it ends. Past 10 streams
  // Node would warn of a possible leak in every server's log; the churn test
  // checks there is none.
  setMaxListeners(0, shutdown.signal);
  let started = false;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  const detach: (() => void)[] = [];
  const storeReady = () => !(store instanceof RedisStore) || store.ready;
  const report = () => {
    health.set(
      started && !stopped && storeReady() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING,
    );
  };

  if (store instanceof RedisStore) {
    // Every change reaches the hub from the store, this replica's own and the
    // other replicas' alike, in order per bucket; streams do not publish.
    detach.push(
      store.onChange((namespace, seed, buckets) => {
        if (hub.state === "running") hub.publish(namespace, seed, buckets);
      }),
      store.onReadyChange(report),
      store.onOperation((operation, durationMs, ok) => {
        metrics.redisLatency.labels(operation).observe(durationMs / 1000);
        if (!ok) metrics.redisErrors.labels(operation).inc();
      }),
    );
  }

  const sync = new SyncService({
    store,
    hub,
    metrics,
    publishApplied: !(store instanceof RedisStore),
    windowMs: config.seedWindowDuration,
    decayRate: config.decayRate,
    maxDeltasPerMessage: config.maxDeltasPerMessage,
    maxStreams: config.maxStreams,
    maxRequestsPerSecond: config.maxRequestsPerSecond,
    maxMessageBytes: config.maxMessageBytes,
    ...clock,
  });

  return {
    config,
    store,
    hub,
    health,
    metrics,
    sync,
    routes(router) {
      registerSyncService(router, sync);
      health.register(router);
    },
    handlerOptions: {
      acceptCompression: config.compression === "gzip" ? [compressionGzip] : [],
      readMaxBytes: config.maxMessageBytes,
      writeMaxBytes: config.maxMessageBytes,
      shutdownSignal: shutdown.signal,
    },
    start() {
      if (started || stopped) return;
      started = true;
      hub.start();
      store.start();
      report();
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        health.set(ServingStatus.NOT_SERVING);
        hub.stop();
        shutdown.abort();
        for (const undo of detach.splice(0)) undo();
        await store.stop();
      })();
      return stopping;
    },
  };
}

function createStore(
  config: StateServerConfig,
  injected: { now?: () => number; timers?: StoreTimers },
): ServerStore {
  const rules = {
    windowMs: config.seedWindowDuration,
    seedEvictionTtlMs: config.seedEvictionTtl,
    decayRatePerSecond: config.decayRate,
    maxRows: config.maxRows,
    maxCols: config.maxCols,
    maxClockSkewMs: config.maxClockSkew,
    maxSeedsPerNamespace: config.maxSeedsPerNamespace,
    maxBucketsPerSeed: config.maxBucketsPerSeed,
    ...injected,
  };
  if (config.store === "memory") return new InMemoryStore(rules);
  return new RedisStore({
    ...rules,
    url: config.redisUrl,
    keyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisCommandTimeout,
  });
}
