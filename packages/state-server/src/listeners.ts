import { once } from "node:events";
import type { Server as HttpServer } from "node:http";
import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { formatAddress, parseListenAddress } from "./listen-address.js";
import { silentLogger } from "./logger.js";
import { createMetricsListener } from "./metrics-listener.js";
import { warnOfOpenPort } from "./open-port-warning.js";
import { createStateServer, type StateServer, type StateServerOptions } from "./state-server.js";
import { readTlsFiles } from "./tls-files.js";

/** Options of {@link serveStateServer}: those of `createStateServer`. */
export type ServeOptions = StateServerOptions;

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
   * configured `shutdownGracePeriodMs`) for connections to close before they
   * are cut. Resolves when both listeners are closed and the server has
   * stopped. Idempotent.
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

/**
 * Starts the State Service on its listeners: `Sync` and
 * `grpc.health.v1.Health` over HTTP/2 (gRPC, gRPC-Web and Connect; TLS with
 * `tlsCertFile` and `tlsKeyFile`) on `grpcListenAddress`, and `/metrics`,
 * `/healthz`, `/readyz` and the live `/dashboard` on `metricsListenAddress`. The server itself — its
 * store, policies and lifecycle — is `createStateServer`'s; this module only
 * listens, reloads TLS material and shuts down. It logs one warning at
 * start-up when the gRPC port is bound beyond loopback with neither tokens
 * nor client certificates (`open-port-warning.ts`): anyone who can reach it
 * could write every bucket.
 *
 * @example
 * ```ts
 * const { config } = loadConfig({ argv: process.argv.slice(2), env: process.env });
 * const running = await serveStateServer({ config });
 * process.once("SIGTERM", () => void running.shutdown());
 * ```
 */
export async function serveStateServer(options: ServeOptions): Promise<RunningStateServer> {
  const logger = options.logger ?? silentLogger;
  const server = createStateServer(options);
  const { config } = server;
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
    ? createSecureServer({ ...(await readTlsFiles(tlsFiles)), allowHTTP1: false, settings })
    : createHttp2Server({ settings });
  server.attach(grpc);
  const metrics = createMetricsListener(
    server.metrics.registry,
    () => server.health.serving,
    server.handleDashboardRequest,
  );

  let grpcAddress: string;
  let metricsAddress: string;
  try {
    await server.start();
    grpcAddress = await listen(grpc, config.grpcListenAddress);
    metricsAddress = await listen(metrics, config.metricsListenAddress);
  } catch (error) {
    grpc.close();
    metrics.close();
    await server.stop();
    throw error;
  }
  warnOfOpenPort(config, parseListenAddress(grpcAddress).host ?? "", grpcAddress, logger);

  const reload = async () => {
    const [nextTls] = await Promise.all([tlsFiles && readTlsFiles(tlsFiles), server.reload()]);
    if (nextTls) (grpc as Http2SecureServer).setSecureContext(nextTls);
    logger.info(
      { tls: nextTls !== undefined, tokens: config.authTokensFile !== undefined },
      "reloaded TLS material and tokens",
    );
  };

  let closing: Promise<void> | undefined;
  const shutdown = (gracePeriodMs = config.shutdownGracePeriodMs) => {
    closing ??= (async () => {
      logger.info({ gracePeriodMs, streams: server.hub.stats().subscribers }, "shutting down");
      // NOT_SERVING and every stream ended at once; the store lets go below.
      const stopped = server.stop();
      const closed = Promise.all([once(grpc, "close"), once(metrics, "close")]);
      grpc.close();
      metrics.close();
      metrics.closeIdleConnections();
      const { connections } = server;
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
      await stopped;
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
