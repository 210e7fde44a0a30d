#!/usr/bin/env node
// The FAIR State Service process: read the configuration, listen, log, and
// shut down gracefully on SIGTERM or SIGINT. Everything else lives in
// @fair/state-server.
import {
  ConfigError,
  configHelp,
  loadConfig,
  serverVersion,
  serveStateServer,
} from "@fair/state-server";
import { pino } from "pino";

/** Exit codes: 0 after a clean shutdown, 1 when the server cannot run, 2 for bad configuration. */
const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;

async function main(): Promise<void> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    // `pnpm start -- --flag` passes the "--" through; it separates nothing here.
    const argv = process.argv.slice(2);
    loaded = loadConfig({ argv: argv[0] === "--" ? argv.slice(1) : argv, env: process.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`state-server: bad configuration:\n${error.message}\n`);
    process.exitCode = EXIT_BAD_CONFIG;
    return;
  }
  if (loaded.help) {
    process.stdout.write(`${configHelp()}\n`);
    return;
  }
  if (loaded.version) {
    process.stdout.write(`fair-state-server ${serverVersion} (node ${process.version})\n`);
    return;
  }
  const { config, origins, deprecations } = loaded;
  // Secrets live in files (tlsKeyFile, authTokensFile) and only their paths
  // are logged; the one secret that can sit in a value, a Redis password, is
  // masked in the start-up line below.
  const logger = pino({ level: config.logLevel, base: { service: "fair-state-server" } });
  // Renamed settings still work for one release; say so once per use.
  for (const deprecation of deprecations) logger.warn(deprecation);

  // Listen for signals before anything slow, so one that arrives during
  // start-up still shuts down gracefully instead of killing the process.
  const stopRequested = new Promise<NodeJS.Signals | "parent exited">((resolve) => {
    process.once("SIGTERM", resolve).once("SIGINT", resolve);
    if (config.exitWithParent) watchParent(() => resolve("parent exited"));
  });

  const running = await serveStateServer({ config, logger });
  logger.info(
    {
      version: serverVersion,
      pid: process.pid,
      grpcAddress: running.grpcAddress,
      metricsAddress: running.metricsAddress,
      ...running.server.store.description,
      // The state epoch clients find in fair-state-epoch; offers are merged for learningPeriodMs.
      epoch: running.server.store.epochs?.current?.id,
      config: { ...config, redisUrl: withoutPassword(config.redisUrl) },
      origins,
    },
    "fair-state-server started",
  );

  // SIGHUP re-reads the TLS certificate and key and the token file.
  const reload = () => {
    running.reload().catch((error: unknown) => {
      logger.error({ err: error }, "reload failed; keeping the previous TLS material and tokens");
    });
  };
  process.on("SIGHUP", reload);

  const signal = await stopRequested;
  process.off("SIGHUP", reload);
  logger.info({ signal, gracePeriodMs: config.shutdownGracePeriodMs }, "shutdown requested");
  const again = (second: NodeJS.Signals) => {
    logger.warn({ signal: second }, "second signal: exiting without waiting");
    process.exit(EXIT_FAILURE);
  };
  process.once("SIGTERM", again).once("SIGINT", again);
  await running.shutdown();
  process.off("SIGTERM", again).off("SIGINT", again);
}

/**
 * Calls `exited` once the process that started this one has exited. pnpm
 * does not pass SIGTERM on to a script's processes: a supervisor stopping
 * `pnpm start` ends pnpm and the shell running the script, and the server
 * would run on as an orphan. So `pnpm start` sets `exitWithParent`, and the
 * server stops, as on SIGTERM, once it is reparented (its parent process
 * id changes). Checked twice a second, on an unref'd timer.
 */
function watchParent(exited: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    exited();
  }, 500);
  timer.unref();
}

/** The Redis URL (or list) as logged: a password in it is replaced, the rest kept for debugging. */
function withoutPassword(urls: string): string {
  return urls
    .split(",")
    .map((url) => {
      try {
        const parsed = new URL(url.trim());
        if (parsed.password !== "") parsed.password = "redacted";
        return parsed.toString();
      } catch {
        return "[unparsable]";
      }
    })
    .join(",");
}

main().catch((error: unknown) => {
  process.stderr.write(`state-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = EXIT_FAILURE;
});
