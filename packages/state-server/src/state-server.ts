import type { ConnectRouter } from "@connectrpc/connect";
import { compressionGzip } from "@connectrpc/connect-node";
import { Hub } from "@fair/state-broadcast";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import { InMemoryStore, type StoreTimers } from "@fair/state-store";
import type { StateServerConfig } from "./config-schema.js";
import { HealthStatus } from "./health.js";
import { createMetrics, type StateServerMetrics } from "./metrics.js";
import { registerSyncService } from "./sync-service.js";

/** What a state server is made of besides its configuration; all injectable for tests. */
export interface StateServerOptions {
  readonly config: StateServerConfig;
  /** The clock, Unix milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /** Timers for eviction, broadcast flushes and stall sweeps. Default the global ones (unref'd). */
  readonly timers?: StoreTimers;
}

/**
 * The State Service without its listeners: the store, the hub, health and
 * metrics, and the Connect routes that serve them. `serveStateServer` puts
 * it on sockets; embedders can mount {@link StateServer.routes} themselves.
 */
export interface StateServer {
  readonly config: StateServerConfig;
  readonly store: InMemoryStore;
  readonly hub: Hub;
  readonly health: HealthStatus;
  readonly metrics: StateServerMetrics;
  /** Registers `Sync` and `grpc.health.v1.Health` on a router. */
  readonly routes: (router: ConnectRouter) => void;
  /** Options for `connectNodeAdapter`: limits, compression, the shutdown signal. */
  readonly handlerOptions: {
    readonly acceptCompression: (typeof compressionGzip)[];
    readonly readMaxBytes: number;
    readonly writeMaxBytes: number;
    readonly shutdownSignal: AbortSignal;
  };
  /** Starts eviction and the hub, then reports SERVING. */
  start(): void;
  /**
   * Reports NOT_SERVING, then stops the hub (every Sync stream ends with
   * UNAVAILABLE so its client reconnects), aborts health watches and stops
   * eviction. Idempotent.
   */
  stop(): void;
}

/** Wires store, hub, health and metrics from a configuration. */
export function createStateServer(options: StateServerOptions): StateServer {
  const { config } = options;
  const clock = options.now === undefined ? {} : { now: options.now };
  const timers = options.timers === undefined ? {} : { timers: options.timers };
  const store = new InMemoryStore({
    windowMs: config.seedWindowDuration,
    seedEvictionTtlMs: config.seedEvictionTtl,
    decayRatePerSecond: config.decayRate,
    maxRows: config.maxRows,
    maxCols: config.maxCols,
    maxClockSkewMs: config.maxClockSkew,
    ...clock,
    ...timers,
  });
  const hub = new Hub({ broadcastIntervalMs: config.broadcastInterval, ...clock, ...timers });
  const health = new HealthStatus();
  const metrics = createMetrics({
    storeStats: () => store.stats(),
    hubStats: () => hub.stats(),
    serving: () => health.serving,
  });
  const shutdown = new AbortController();
  let stopped = false;

  return {
    config,
    store,
    hub,
    health,
    metrics,
    routes(router) {
      registerSyncService(router, {
        store,
        hub,
        metrics,
        windowMs: config.seedWindowDuration,
        decayRate: config.decayRate,
        maxDeltasPerMessage: config.maxDeltasPerMessage,
        maxMessageBytes: config.maxMessageBytes,
      });
      health.register(router);
    },
    handlerOptions: {
      acceptCompression: config.compression === "gzip" ? [compressionGzip] : [],
      readMaxBytes: config.maxMessageBytes,
      writeMaxBytes: config.maxMessageBytes,
      shutdownSignal: shutdown.signal,
    },
    start() {
      if (stopped) return;
      store.start();
      hub.start();
      health.set(ServingStatus.SERVING);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      health.set(ServingStatus.NOT_SERVING);
      hub.stop();
      shutdown.abort();
      store.stop();
    },
  };
}
