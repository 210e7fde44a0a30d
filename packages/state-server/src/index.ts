/**
 * `@fair/state-server`: the FAIR State Service — the `Sync` service over
 * Connect (gRPC, gRPC-Web and Connect protocols on HTTP/2), its
 * configuration schema, its metrics and health.
 *
 * @example
 * ```ts
 * import { loadConfig, serveStateServer } from "@fair/state-server";
 *
 * const { config } = loadConfig({ argv: process.argv.slice(2), env: process.env });
 * const running = await serveStateServer({ config });
 * console.log(`gRPC on ${running.grpcAddress}`);
 * process.once("SIGTERM", () => void running.shutdown());
 * ```
 *
 * @packageDocumentation
 */

export type { ConfigKey, StateServerConfig } from "./config-schema.js";
export { configKeys, envName, flagName } from "./config-schema.js";
export type { ConnectionCloseReason, ConnectionLimits } from "./connections.js";
export { Connections } from "./connections.js";
export { HealthStatus } from "./health.js";
export type { ConfigIssue, ConfigOrigin, ConfigSources, LoadedConfig } from "./load-config.js";
export { CONFIG_FILE_ENV, ConfigError, configHelp, loadConfig } from "./load-config.js";
export type { MetricSources, StateServerMetrics, SyncMetrics } from "./metrics.js";
export { createMetrics } from "./metrics.js";
export type { RunningStateServer, ServeOptions, ServerLogger } from "./serve.js";
export { serveStateServer } from "./serve.js";
export type { ServerStore, StateServer, StateServerOptions } from "./state-server.js";
export { createStateServer } from "./state-server.js";
export type { SyncServiceOptions } from "./sync-service.js";
export { registerSyncService, SyncService } from "./sync-service.js";
