/**
 * `@fair/state-server`: the FAIR State Service — the `Sync` service on
 * HTTP/2 (gRPC, gRPC-Web and Connect protocols) over any `Store`, with its
 * policies, configuration schema, metrics, health and listeners.
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

export type { ConfigKey, DeprecatedConfigKey, StateServerConfig } from "./config-schema.js";
export { configKeys, deprecatedConfigKeys, envName, flagName } from "./config-schema.js";
export type { Connections } from "./connections.js";
export { HealthStatus } from "./health.js";
export type { RunningStateServer, ServeOptions } from "./listeners.js";
export { serveStateServer } from "./listeners.js";
export type { ConfigIssue, ConfigOrigin, ConfigSources, LoadedConfig } from "./load-config.js";
export { CONFIG_FILE_ENV, ConfigError, configHelp, loadConfig } from "./load-config.js";
export type { ServerLogger } from "./logger.js";
export type { StateServerMetrics } from "./metrics.js";
export type { StateServer, StateServerOptions } from "./state-server.js";
export { createStateServer } from "./state-server.js";
export { createStoreFromConfig } from "./store-from-config.js";
export { serverVersion } from "./version.js";
