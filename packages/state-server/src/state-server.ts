import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import type {
  Http2SecureServer,
  Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  Http2Session,
} from "node:http2";
import { Hub } from "@fair/state-broadcast";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "@fair/state-proto";
import type { Store } from "@fair/state-store";
import { systemTimers, type Timers } from "@fair/timers";
import { Admission } from "./admission.js";
import { AuthTokens } from "./auth-tokens.js";
import type { StateServerConfig } from "./config-schema.js";
import { Connections } from "./connections.js";
import { createDashboardHandler, type DashboardHandler } from "./dashboard.js";
import { watchEpochs } from "./epoch-watch.js";
import { HealthStatus } from "./health.js";
import { type ServerLogger, silentLogger } from "./logger.js";
import { createMetrics, type StateServerMetrics } from "./metrics.js";
import { createRequestHandler } from "./request-handler.js";
import { SnapshotSchedule } from "./snapshots.js";
import { createStoreFromConfig } from "./store-from-config.js";
import { SyncService } from "./sync-service.js";

/** What a state server is made of besides its configuration; all injectable for tests. */
export interface StateServerOptions {
  readonly config: StateServerConfig;
  /** The clock, Unix milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /** Timers for eviction, broadcast flushes, stall sweeps and snapshots. Default `systemTimers`. */
  readonly timers?: Timers;
  /**
   * The store to serve instead of the one `config.store` describes: any
   * implementation of the `Store` contract. The server starts and stops it.
   * Default: made from the configuration.
   */
  readonly store?: Store;
  /** Where the server reports start-up, refusals, readiness and shutdown. Default: nowhere. */
  readonly logger?: ServerLogger;
}

/**
 * The State Service without its listeners: the store, the hub, health,
 * metrics and every policy — tokens, connection and stream limits, request
 * rates, the slow-consumer cut-off — behind one HTTP/2 request handler that
 * serves gRPC, gRPC-Web and Connect alike. `serveStateServer` puts it on
 * sockets; an embedder can {@link StateServer.attach} it to an HTTP/2 server
 * of its own and gets the same policies.
 *
 * @example
 * ```ts
 * const server = createStateServer({ config });
 * const http2 = createServer({ settings: { maxConcurrentStreams: config.maxStreamsPerConnection } });
 * server.attach(http2);
 * await server.start();
 * http2.listen(50051);
 * ```
 */
export interface StateServer {
  readonly config: StateServerConfig;
  readonly store: Store;
  readonly hub: Hub;
  readonly health: HealthStatus;
  readonly metrics: StateServerMetrics;
  /** The HTTP/2 connections the server has been handed, counted against `maxConnections`. */
  readonly connections: Connections;
  /**
   * Serves one request: `Sync` and `grpc.health.v1.Health`, in every
   * protocol. Requests on connections not handed to {@link StateServer.handleSession}
   * escape `maxConnections`, keepalive and the idle timeout: use
   * {@link StateServer.attach}.
   */
  readonly handleRequest: (request: Http2ServerRequest, response: Http2ServerResponse) => void;
  /** Takes a new connection: counted against `maxConnections`, pinged, closed when idle. */
  readonly handleSession: (session: Http2Session) => void;
  /**
   * Serves the live dashboard (`/dashboard` and under it) on an HTTP/1.1
   * server: the metrics listener of `serveStateServer`, or an embedder's.
   * Read-only; with tokens, its data needs one allowed for the namespace.
   */
  readonly handleDashboardRequest: DashboardHandler;
  /** Serves every connection and request of `server`; returns the way to detach. */
  attach(server: Http2Server | Http2SecureServer): () => void;
  /**
   * Reads the token file, restores the snapshot (with `snapshotPath` and a
   * store that can be snapshotted, creating its directory if missing),
   * starts the hub and the store, and reports SERVING — once the store is
   * ready, when it can be unready. Until it resolves, `Sync` is refused with
   * UNAVAILABLE. From then on, with a store that has epochs, a new epoch
   * ends every open `Sync` stream with UNAVAILABLE so its client reconnects
   * and sees it. Rejects, leaving nothing running, when the token file
   * cannot be read.
   */
  start(): Promise<void>;
  /**
   * Reads the token file again: a token removed from it is refused from the
   * next stream on. A file that cannot be read leaves the old tokens in
   * place and rejects with the reason.
   */
  reload(): Promise<void>;
  /**
   * Reports NOT_SERVING, stops applying updates, stops the hub (every `Sync`
   * stream ends with UNAVAILABLE so its client reconnects), aborts health
   * watches, stops the store and writes the last snapshot. Connections stay
   * open for their owner to close. Idempotent.
   */
  stop(): Promise<void>;
}

/** Wires store, hub, health, metrics and policies from a configuration. */
export function createStateServer(options: StateServerOptions): StateServer {
  const { config } = options;
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const timers = options.timers ?? systemTimers;
  const store = options.store ?? createStoreFromConfig(config, { now, timers });
  const hub = new Hub({
    broadcastIntervalMs: config.broadcastIntervalMs,
    maxStallMs: config.maxStallMs,
    now,
    timers,
  });
  const health = new HealthStatus();
  // Made below, read only at scrape time.
  let snapshots: SnapshotSchedule | undefined;
  const metrics = createMetrics({
    storeStats: () => store.stats(),
    hubStats: () => hub.stats(),
    serving: () => health.serving,
    epoch: () => store.epochs?.current,
    learningPeriodMs: config.learningPeriodMs,
    snapshotTakenAtMs: () => snapshots?.takenAtMs,
    now,
    namespaces: { always: config.metricsNamespaces, max: config.maxMetricsNamespaces },
  });
  store.registerMetrics?.(metrics.registry);
  warnOfSeedLimit(config, logger);

  let state: "new" | "starting" | "running" | "stopped" = "new";
  const connections = new Connections(
    {
      maxConnections: config.maxConnections,
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      keepaliveTimeoutMs: config.keepaliveTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      connectionTimeoutMs: config.connectionTimeoutMs,
    },
    metrics,
    logger,
    timers,
  );
  const admission = new Admission({
    connections,
    metrics,
    running: () => state === "running",
  });
  const sync = new SyncService({
    store,
    hub,
    metrics,
    logger,
    // A store with a change feed hands every change to the hub itself.
    publishApplied: store.changes === undefined,
    windowMs: config.windowMs,
    decayRatePerSecond: config.decayRatePerSecond,
    maxDeltasPerMessage: config.maxDeltasPerMessage,
    maxStreams: config.maxStreams,
    maxRequestsPerSecond: config.maxRequestsPerSecond,
    maxMessageBytes: config.maxMessageBytes,
    maxStallMs: config.maxStallMs,
    now,
    timers,
  });
  const shutdown = new AbortController();
  // Connect links every request's signal to this one: one "abort" listener
  // per open stream or health watch, removed when it ends. Past 10 streams
  // Node would warn of a possible leak in every server's log; the churn test
  // checks there is none.
  setMaxListeners(0, shutdown.signal);
  const handleRequest = createRequestHandler({
    sync,
    health,
    admission,
    compression: config.compression,
    maxMessageBytes: config.maxMessageBytes,
    shutdownSignal: shutdown.signal,
    messageTimeoutMs: config.messageTimeoutMs,
    maxBufferedRequestBytes: config.maxBufferedRequestBytes,
    metrics,
    timers,
  });
  const handleSession = (session: Http2Session) => connections.add(session);
  snapshots =
    config.snapshotPath !== undefined && store.persistence !== undefined
      ? new SnapshotSchedule({
          path: config.snapshotPath,
          intervalMs: config.snapshotIntervalMs,
          persistence: store.persistence,
          metrics,
          logger,
          timers,
          now,
        })
      : undefined;

  const detach: (() => void)[] = [];
  const report = () => {
    const ready = store.readiness?.ready ?? true;
    health.set(state === "running" && ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  };
  // The dashboard checks the same tokens as Sync, the ones read last.
  let tokens: AuthTokens | undefined;
  const readTokens = async () => {
    const path = config.authTokensFile;
    tokens = path === undefined ? undefined : AuthTokens.parse(await readFile(path, "utf8"), path);
    admission.setTokens(tokens);
  };
  const handleDashboardRequest = createDashboardHandler({
    store,
    storeStats: () => store.stats(),
    hubStats: () => hub.stats(),
    windowMs: config.windowMs,
    decayRatePerSecond: config.decayRatePerSecond,
    now,
    tokens: () => tokens,
  });
  let stopping: Promise<void> | undefined;

  return {
    config,
    store,
    hub,
    health,
    metrics,
    connections,
    handleRequest,
    handleSession,
    handleDashboardRequest,
    attach(server) {
      server.on("session", handleSession);
      server.on("request", handleRequest);
      return () => {
        server.off("session", handleSession);
        server.off("request", handleRequest);
      };
    },
    async start() {
      if (state !== "new") return;
      state = "starting";
      try {
        await readTokens();
        await snapshots?.start();
      } catch (error) {
        state = "stopped";
        throw error;
      }
      if (stopping) {
        snapshots?.stop();
        return;
      }
      const { readiness, changes, epochs } = store;
      if (epochs) {
        // A new epoch under open streams ends them, so their clients see it.
        detach.push(watchEpochs(epochs, sync, logger));
      }
      if (changes) {
        // Every change reaches the hub from the store, this server's own and
        // the other replicas' alike, in the order the shared view took them.
        detach.push(
          changes.onChange((namespace, seed, buckets) => {
            if (hub.state === "running") hub.publish(namespace, seed, buckets);
          }),
        );
      }
      if (readiness) {
        detach.push(
          readiness.onReadyChange((ready) => {
            report();
            if (ready) logger.info({ ...store.description }, "store ready: SERVING");
            else {
              logger.warn(
                { ...store.description, reason: readiness.notReadyReason },
                "store not ready: NOT_SERVING",
              );
            }
          }),
        );
      }
      hub.start();
      store.start();
      state = "running";
      report();
    },
    reload: readTokens,
    stop() {
      stopping ??= (async () => {
        const started = state === "running";
        state = "stopped";
        report();
        sync.close();
        hub.stop();
        shutdown.abort();
        connections.stop();
        for (const undo of detach.splice(0)) undo();
        snapshots?.stop();
        await store.stop();
        // Last, when nothing can change the store any more; never over a
        // snapshot that a server which did not start could not have restored.
        if (started) await snapshots?.write();
      })();
      return stopping;
    },
  };
}

/** Seeds outside the live range are dropped anyway; past this many a fleet's own are refused. */
function warnOfSeedLimit(config: StateServerConfig, logger: ServerLogger): void {
  const liveSeeds = Math.floor(config.seedEvictionTtlMs / config.windowMs) + 3;
  if (liveSeeds > config.maxSeedsPerNamespace) {
    logger.warn(
      { liveSeeds, maxSeedsPerNamespace: config.maxSeedsPerNamespace },
      "a namespace may hold more live seeds than maxSeedsPerNamespace: raise it, or updates for new windows may be refused",
    );
  }
}
