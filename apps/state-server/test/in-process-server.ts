// A server in this test process, on loopback with free ports: for tests that
// drive it from outside (a CLI, a browser) and need no separate process.
import {
  loadConfig,
  type RunningStateServer,
  type StateServerConfig,
  serveStateServer,
} from "@fair/state-server";

/** Serves the defaults plus `overrides` on 127.0.0.1:0; `shutdown()` it when done. */
export function serveInProcess(
  overrides: Partial<StateServerConfig> = {},
  now?: () => number,
): Promise<RunningStateServer> {
  return serveStateServer({
    config: {
      ...loadConfig({ argv: [], env: {} }).config,
      grpcListenAddress: "127.0.0.1:0",
      metricsListenAddress: "127.0.0.1:0",
      ...overrides,
    },
    ...(now === undefined ? {} : { now }),
  });
}
