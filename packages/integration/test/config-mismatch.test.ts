// Window and λ must agree between the trackers, their clients and the
// server; the server's values are authoritative. A disagreement is reported
// loudly, on every side, within one connection attempt — never a silent
// reconnect loop with the tracker running on its own state.
import { StateClient, type StateClientError } from "@fair/state-client";
import { loadConfig, type ServerLogger, serveStateServer } from "@fair/state-server";
import {
  defaultFairnessTrackerConfig,
  FairnessTracker,
  type FairnessTrackerError,
} from "@fair/tracker";
import { afterEach, expect, test } from "vitest";

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A server on loopback that keeps its warn lines. */
async function startServer(windowMs: number) {
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: ServerLogger = {
    info() {},
    error() {},
    warn: (fields, message) =>
      warnings.push({ fields: fields as Record<string, unknown>, message }),
  };
  const running = await serveStateServer({
    config: {
      ...loadConfig({ argv: [], env: {} }).config,
      grpcListenAddress: "127.0.0.1:0",
      metricsListenAddress: "127.0.0.1:0",
      windowMs,
    },
    logger,
  });
  closers.push(() => running.shutdown(500));
  return { baseUrl: `http://${running.grpcAddress}`, warnings };
}

/** Resolves once `client` has closed (a window mismatch closes it). */
const closed = (client: StateClient) =>
  new Promise<void>((resolve) => {
    if (client.status === "closed") resolve();
    client.subscribe({ onStatusChange: (status) => status === "closed" && resolve() });
  });

test("a client and tracker on a 1-minute window against a 5-minute server: config_mismatch on the client, the tracker's onError and the server's log, one attempt", async () => {
  const server = await startServer(300_000);
  const client = new StateClient({ baseUrl: server.baseUrl, windowMs: 60_000 });
  const clientErrors: StateClientError[] = [];
  client.on("error", (error) => clientErrors.push(error));
  const trackerErrors: FairnessTrackerError[] = [];
  const tracker = new FairnessTracker(
    { ...defaultFairnessTrackerConfig(), rotationFrequencyMs: 60_000 },
    { distributed: { trackerId: "checkout", link: client }, onError: (e) => trackerErrors.push(e) },
  );
  closers.push(
    () => tracker.close(),
    () => client.close(),
  );
  client.connect();
  await closed(client);

  expect(clientErrors.map((e) => e.code)).toEqual(["config_mismatch"]);
  expect(clientErrors[0]?.message).toContain(
    "the server's seed window is 300000 ms, the client's windowMs is 60000",
  );
  expect(client.stats().reconnects).toBe(0);
  expect(trackerErrors.map((e) => e.code)).toEqual(["config_mismatch"]);
  expect(trackerErrors[0]?.message).toContain("seed window is 300000 ms");
  const mismatch = server.warnings.find((w) => w.fields["code"] === "config_mismatch");
  expect(mismatch?.message).toContain("the client's windowMs is 60000, the server's 300000");
  expect(mismatch?.fields).toMatchObject({ clientWindowMs: "60000", serverWindowMs: 300_000 });
});

test("a tracker whose window differs from its own client's reports it at once and shares nothing", async () => {
  const server = await startServer(300_000);
  const client = new StateClient({ baseUrl: server.baseUrl });
  const trackerErrors: FairnessTrackerError[] = [];
  const tracker = new FairnessTracker(
    { ...defaultFairnessTrackerConfig(), rotationFrequencyMs: 60_000, lambda: 0.02 },
    { distributed: { trackerId: "checkout", link: client }, onError: (e) => trackerErrors.push(e) },
  );
  closers.push(
    () => tracker.close(),
    () => client.close(),
  );
  expect(trackerErrors.map((e) => e.code)).toEqual(["config_mismatch"]);
  expect(trackerErrors[0]?.message).toContain(
    "the tracker's rotationFrequencyMs is 60000, its link's windowMs 300000",
  );
  expect(trackerErrors[0]?.message).toContain(
    "the tracker's lambda is 0.02, its link's decayRatePerSecond 0.01",
  );
  // Nothing of the tracker's reaches the link: no seed the server would refuse.
  tracker.reportOutcome("bad-client", "failure");
  expect(client.stats().deltasQueued).toBe(0);
  expect(tracker.syncStats().fullStateRequests).toBe(0);
});
