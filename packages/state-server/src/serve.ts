import { once } from "node:events";
import { readFile } from "node:fs/promises";
import type { Server as HttpServer } from "node:http";
import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { InMemoryStore } from "@fair/state-store";
import { RedisStore } from "@fair/state-store-redis";
import { authInterceptor, type OnAuthRefusal, refuseSyncToken } from "./auth-interceptor.js";
import { AuthTokens } from "./auth-tokens.js";
import { Connections } from "./connections.js";
import { createGrpcSyncHandler, resetIfStuck } from "./grpc-sync-handler.js";
import { formatAddress, parseListenAddress } from "./listen-address.js";
import { createMetricsListener } from "./metrics-listener.js";
import { loadSnapshotFile, removeStaleTemporaries, SnapshotWriter } from "./snapshot-file.js";
import { createStateServer, type StateServer, type StateServerOptions } from "./state-server.js";
import { resetStuckStreamKey } from "./sync-service.js";
import { readTlsFiles } from "./tls-files.js";

/** The few logger methods the server uses; a pino logger fits. */
export interface ServerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Options of {@link serveStateServer}. */
export interface ServeOptions extends StateServerOptions {
  /** Where start-up and shutdown are reported. Default: nowhere. */
  readonly logger?: ServerLogger;
}

/** A state server on its two listeners. */
export interface RunningStateServer {
  readonly server: StateServer;
  /** The gRPC address actually bound (`127.0.0.1:50051`; port 0 resolved). */
  readonly grpcAddress: string;
  /** The metrics address actually bound. */
  readonly metricsAddress: string;
  /**
   * Shuts down gracefully: NOT_SERVING at once, no new connections or
   * streams, every Sync stream ended with UNAVAILABLE (its client
   * reconnects elsewhere), then up to `gracePeriodMs` (default the
   * configured `shutdownGracePeriod`) for connections to close before they
   * are cut. Resolves when both listeners are closed. Idempotent.
   */
  shutdown(gracePeriodMs?: number): Promise<void>;
  /**
   * Reads the TLS certificate, key and client CA and the token file again
   * (SIGHUP does this in the app). New connections get the new certificate;
   * open streams carry on; a token removed from the file is refused from the
   * next stream on. A file that cannot be read leaves the old material in
   * place and rejects with the reason.
   */
  reload(): Promise<void>;
}

const silent: ServerLogger = { info() {}, warn() {}, error() {} };

/**
 * Starts the State Service: `Sync` and `grpc.health.v1.Health` over HTTP/2
 * without TLS (gRPC, gRPC-Web and Connect protocols) on
 * `grpcListenAddress`, and `/metrics`, `/healthz`, `/readyz` on
 * `metricsListenAddress`.
 *
 * @example
 * ```ts
 * const { config } = loadConfig({ argv: process.argv.slice(2), env: process.env });
 * const running = await serveStateServer({ config });
 * process.once("SIGTERM", () => void running.shutdown());
 * ```
 */
export async function serveStateServer(options: ServeOptions): Promise<RunningStateServer> {
  const logger = options.logger ?? silent;
  const server = createStateServer(options);
  const { config } = server;
  // Seeds outside the live range are dropped anyway; past this many a fleet's own are refused.
  const liveSeeds = Math.floor(config.seedEvictionTtl / config.seedWindowDuration) + 3;
  if (liveSeeds > config.maxSeedsPerNamespace) {
    logger.warn(
      { liveSeeds, maxSeedsPerNamespace: config.maxSeedsPerNamespace },
      "a namespace may hold more live seeds than maxSeedsPerNamespace: raise it, or updates for new windows may be refused",
    );
  }
  let tokens =
    config.authTokensFile === undefined ? undefined : await readTokens(config.authTokensFile);
  const onAuthRefusal: OnAuthRefusal = (reason, namespace) => {
    server.metrics.authFailures.labels(reason).inc();
    logger.warn({ reason, namespace }, "Sync refused: bad token");
  };
  const connections = new Connections(
    {
      maxConnections: config.maxConnections,
      keepaliveIntervalMs: config.keepaliveInterval,
      keepaliveTimeoutMs: config.keepaliveTimeout,
      idleTimeoutMs: config.idleTimeout,
    },
    server.metrics,
    logger,
  );
  const connect = connectNodeAdapter({
    routes: server.routes,
    ...server.handlerOptions,
    contextValues: (request) => {
      const values = connections.contextValues(request);
      if ("stream" in request) {
        values.set(resetStuckStreamKey, () => resetIfStuck(request.stream));
      }
      return values;
    },
    interceptors: [connections.interceptor(), authInterceptor(() => tokens, onAuthRefusal)],
  });
  // gRPC Sync streams without compression take the fast path; the rest
  // (gRPC-Web, Connect, JSON, compression, health) go through Connect.
  const grpcSync =
    config.compression === "none"
      ? createGrpcSyncHandler({
          sync: server.sync,
          maxMessageBytes: config.maxMessageBytes,
          authorize: (authorization, namespace) =>
            refuseSyncToken(tokens, authorization, namespace, onAuthRefusal),
        })
      : () => false;
  const adapter = (request: Http2ServerRequest, response: Http2ServerResponse) => {
    // Connect answers requests on connections past maxConnections (RESOURCE_EXHAUSTED, health aside).
    if (connections.isRefused(request) || !grpcSync(request, response)) connect(request, response);
  };
  const tlsFiles =
    config.tlsCertFile === undefined || config.tlsKeyFile === undefined
      ? undefined
      : {
          certFile: config.tlsCertFile,
          keyFile: config.tlsKeyFile,
          clientCaFile: config.tlsClientCaFile,
        };
  const settings = { maxConcurrentStreams: config.maxStreamsPerConnection };
  const grpc: Http2Server | Http2SecureServer = tlsFiles
    ? createSecureServer(
        { ...(await readTlsFiles(tlsFiles)), allowHTTP1: false, settings },
        adapter,
      )
    : createHttp2Server({ settings }, adapter);
  const reload = async () => {
    const [nextTls, nextTokens] = await Promise.all([
      tlsFiles && readTlsFiles(tlsFiles),
      config.authTokensFile === undefined ? undefined : readTokens(config.authTokensFile),
    ]);
    if (nextTls) (grpc as Http2SecureServer).setSecureContext(nextTls);
    tokens = nextTokens;
    logger.info(
      { tls: nextTls !== undefined, tokens: nextTokens?.size ?? 0 },
      "reloaded TLS material and tokens",
    );
  };
  grpc.on("session", (session) => connections.add(session));
  const metrics = createMetricsListener(server.metrics.registry, () => server.health.serving);

  const { store } = server;
  const unwatch =
    store instanceof RedisStore
      ? store.onReadyChange((ready) => {
          if (ready) logger.info({ replicaId: store.replicaId }, "redis ready: SERVING");
          else logger.warn({ replicaId: store.replicaId }, "redis unavailable: NOT_SERVING");
        })
      : () => {};
  const snapshots =
    server.config.snapshotPath === undefined ? noSnapshots : await startSnapshots(server, logger);
  server.start();
  let grpcAddress: string;
  let metricsAddress: string;
  try {
    grpcAddress = await listen(grpc, config.grpcListenAddress);
    metricsAddress = await listen(metrics, config.metricsListenAddress);
  } catch (error) {
    unwatch();
    snapshots.stop();
    grpc.close();
    metrics.close();
    await server.stop();
    throw error;
  }

  let closing: Promise<void> | undefined;
  const shutdown = (gracePeriodMs = config.shutdownGracePeriod) => {
    closing ??= (async () => {
      logger.info({ gracePeriodMs, streams: server.hub.stats().subscribers }, "shutting down");
      unwatch();
      // NOT_SERVING and every stream ended at once; the store lets go below.
      const storeStopped = server.stop();
      const closed = Promise.all([once(grpc, "close"), once(metrics, "close")]);
      grpc.close();
      metrics.close();
      metrics.closeIdleConnections();
      connections.stop();
      for (const session of connections.sessions) session.close();
      const timer = setTimeout(() => {
        if (connections.size > 0) {
          logger.warn({ sessions: connections.size }, "grace period over; cutting connections");
        }
        for (const session of connections.sessions) session.destroy();
        metrics.closeAllConnections();
      }, gracePeriodMs);
      try {
        await closed;
      } finally {
        clearTimeout(timer);
      }
      await storeStopped;
      // Last, when no stream can change the store any more.
      snapshots.stop();
      await snapshots.write();
      logger.info({}, "stopped");
    })();
    return closing;
  };

  return { server, grpcAddress, metricsAddress, shutdown, reload };
}

async function listen(target: Http2Server | HttpServer, address: string): Promise<string> {
  const { host, port } = parseListenAddress(address);
  target.listen(port, host);
  try {
    // once() rejects if "error" comes first, e.g. EADDRINUSE.
    await once(target, "listening");
  } catch (error) {
    throw new Error(`cannot listen on ${address}: ${(error as Error).message}`, { cause: error });
  }
  const bound = target.address() as AddressInfo;
  return formatAddress(bound.address, bound.port);
}

const noSnapshots = { stop() {}, write: async () => {} };

async function readTokens(path: string): Promise<AuthTokens> {
  return AuthTokens.parse(await readFile(path, "utf8"), path);
}

/**
 * With `snapshotPath` and the in-memory store: load the snapshot before
 * serving, then write one every `snapshotInterval` and a last one at
 * shutdown. A snapshot that cannot be read is set aside, never fatal.
 */
async function startSnapshots(server: StateServer, logger: ServerLogger) {
  const { store, config, metrics } = server;
  const path = config.snapshotPath;
  if (path === undefined || !(store instanceof InMemoryStore)) return noSnapshots;
  await removeStaleTemporaries(path);
  const loaded = await loadSnapshotFile(path, store, Date.now());
  if (loaded.kind === "set_aside")
    logger.error({ path, ...loaded }, "snapshot unreadable: set aside, starting empty");
  else logger.info({ path, ...loaded }, "snapshot");
  const writer = new SnapshotWriter(path, () => store.snapshot());
  const write = async () => {
    try {
      await writer.write();
      metrics.snapshotWrites.labels("ok").inc();
    } catch (error) {
      metrics.snapshotWrites.labels("error").inc();
      logger.error({ path, err: error }, "snapshot write failed");
    }
  };
  const timer = setInterval(() => void write(), config.snapshotInterval);
  timer.unref();
  return { stop: () => clearInterval(timer), write };
}
