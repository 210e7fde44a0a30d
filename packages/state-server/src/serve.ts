import { once } from "node:events";
import type { Server as HttpServer } from "node:http";
import { createServer as createHttp2Server, type Http2Server, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { RedisStore } from "@fair/state-store-redis";
import { formatAddress, parseListenAddress } from "./listen-address.js";
import { createMetricsListener } from "./metrics-listener.js";
import { createStateServer, type StateServer, type StateServerOptions } from "./state-server.js";

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
  const grpc = createHttp2Server(
    connectNodeAdapter({ routes: server.routes, ...server.handlerOptions }),
  );
  const sessions = new Set<Http2Session>();
  grpc.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const metrics = createMetricsListener(server.metrics.registry, () => server.health.serving);

  const { store } = server;
  const unwatch =
    store instanceof RedisStore
      ? store.onReadyChange((ready) => {
          if (ready) logger.info({ replicaId: store.replicaId }, "redis ready: SERVING");
          else logger.warn({ replicaId: store.replicaId }, "redis unavailable: NOT_SERVING");
        })
      : () => {};
  server.start();
  let grpcAddress: string;
  let metricsAddress: string;
  try {
    grpcAddress = await listen(grpc, config.grpcListenAddress);
    metricsAddress = await listen(metrics, config.metricsListenAddress);
  } catch (error) {
    unwatch();
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
      for (const session of sessions) session.close();
      const timer = setTimeout(() => {
        if (sessions.size > 0) {
          logger.warn({ sessions: sessions.size }, "grace period over; cutting connections");
        }
        for (const session of sessions) session.destroy();
        metrics.closeAllConnections();
      }, gracePeriodMs);
      try {
        await closed;
      } finally {
        clearTimeout(timer);
      }
      await storeStopped;
      logger.info({}, "stopped");
    })();
    return closing;
  };

  return { server, grpcAddress, metricsAddress, shutdown };
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
