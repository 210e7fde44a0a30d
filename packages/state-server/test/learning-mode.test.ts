// Learning mode on a real server (127.0.0.1, port 0) with fake time: the
// state epoch every Sync stream is told in `fair-state-epoch`, clients'
// StateOffers merged by maximum while the epoch is young and refused after,
// every open stream ended when the epoch changes, snapshots in a state
// directory, and the figures operators watch all of it by. Offers run on the
// in-memory store the server makes and on the test-only MapStore; epoch
// changes on MapStore, whose epoch a test can change (as a Redis that lost
// its data would).

import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { EPOCH_HEADER, type SyncRequest, type SyncResponse } from "@fair/state-proto";
import {
  type BucketState,
  type StoreEpochs,
  StoreError,
  type StoreNamespace,
} from "@fair/state-store";
import { afterEach, describe, expect, test, vi } from "vitest";
import { loadConfig } from "../src/index.js";
import {
  connectJson,
  deltaUpdate,
  grpcProtobuf,
  grpcWebProtobuf,
  type MakeStore,
  type MakeTransport,
  plain,
  type SyncClient,
  seed0,
  startServer,
  stateOffer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";
import { MapStore, type MapStoreExtras } from "./map-store.js";

const lambda = 0.01;
const decay = (ms: number) => Math.exp((-lambda * ms) / 1000);
/** The default `learningPeriodMs`: 30 s. */
const learningPeriodMs = 30_000;
/** What a stream ended for an epoch change is told. */
const epochChanged = "state epoch changed; reconnect";

/** Every server a test started, closed after it. */
const servers: TestServer[] = [];
/** Temporary directories, removed after the test. */
const dirs: string[] = [];

afterEach(async () => {
  for (const started of servers.splice(0)) await started.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const started = await startServer(...args);
  servers.push(started);
  return started;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "fair-state-learning-"));
  dirs.push(dir);
  return dir;
}

/** The test-only store, on the server's rules and clock; with `extras.epochs`, epochs a test can change. */
function mapStore(extras: MapStoreExtras = {}): MakeStore {
  return (config, time) =>
    new MapStore(
      {
        windowMs: config.windowMs,
        seedEvictionTtlMs: config.seedEvictionTtlMs,
        decayRatePerSecond: config.decayRatePerSecond,
        maxClockSkewMs: config.maxClockSkewMs,
        learningPeriodMs: config.learningPeriodMs,
        now: time.now,
        timers: time.timers,
      },
      extras,
    );
}

const stores: [string, MakeStore | undefined][] = [
  ["the in-memory store", undefined],
  ["a test-only Store with epochs", mapStore({ epochs: true })],
];

const transports: [string, MakeTransport][] = [
  ["gRPC (the server's own path)", grpcProtobuf],
  ["gRPC-Web (through Connect)", grpcWebProtobuf],
  ["Connect JSON (through Connect)", connectJson],
];

/** The sample values of metric `name` on `server`, with their labels. */
async function samples(
  server: TestServer,
  name: string,
): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = server.running.server.metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.map(({ labels, value }) => ({
    labels: labels as Record<string, string | number>,
    value,
  }));
}

/** The one sample of `name` whose labels include `labels`; `undefined` if none. */
async function sample(
  server: TestServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const all = await samples(server, name);
  return all.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** `fair_state_offers_total`, by result. */
async function offers(server: TestServer): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { labels, value } of await samples(server, "fair_state_offers_total")) {
    counts[String(labels["result"])] = value;
  }
  return counts;
}

/**
 * Sends `messages` on `client`, then a StateRequest, and waits for its reply:
 * a stream applies its requests in order, so the reply proves every message
 * before it was applied (or refused), and its broadcasts published.
 */
async function applied(client: SyncClient, ...messages: SyncRequest[]): Promise<void> {
  const before = client.fullStateReplies(seed0).length;
  client.send(...messages, stateRequest(seed0));
  await client.until(
    () => client.fullStateReplies(seed0).length > before,
    "the reply that follows the messages",
  );
}

/** What the store holds for `seed0`, in (row, col) order. */
async function held(server: TestServer): Promise<BucketState[]> {
  const buckets = await server.running.server.store.getSeed(seed0);
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

/** Broadcasts (not full-state replies) `client` received. */
function broadcasts(client: SyncClient): SyncResponse[] {
  return client.responses.filter((r) => !r.fullState);
}

/** The epoch a stream's response headers announce, once it has received a message. */
async function epochOf(client: SyncClient): Promise<string | null | undefined> {
  client.send(stateRequest(seed0));
  await client.until(() => client.fullStateReplies(seed0).length > 0, "a reply");
  return client.headers?.get(EPOCH_HEADER);
}

/** The MapStore a server runs on. */
function mapStoreOf(server: TestServer): MapStore {
  const { store } = server.running.server;
  if (!(store instanceof MapStore)) throw new Error("not on the test-only store");
  return store;
}

describe("the fair-state-epoch header", () => {
  describe.each(transports)("over %s", (_name, make) => {
    test("carries the in-memory store's epoch", async () => {
      const server = await start();
      const epoch = server.running.server.store.epochs?.current?.id;
      expect(epoch).toMatch(/\S/);
      expect(await epochOf(server.open(make))).toBe(epoch);
    });

    test("carries the epoch of a store with the capability, and is absent without it", async () => {
      const withEpochs = await start({}, mapStore({ epochs: true }));
      expect(await epochOf(withEpochs.open(make))).toBe(mapStoreOf(withEpochs).epoch.id);
      const without = await start({}, mapStore());
      expect(without.running.server.store.epochs).toBeUndefined();
      expect(await epochOf(without.open(make))).toBeNull();
    });
  });

  test("every stream of a server is told the same epoch", async () => {
    const server = await start();
    const epochs = await Promise.all([
      epochOf(server.connect()),
      epochOf(server.connect("checkout")),
      epochOf(server.open(connectJson)),
    ]);
    expect(new Set(epochs)).toEqual(new Set([server.running.server.store.epochs?.current?.id]));
  });
});

describe.each(stores)("state offers on %s", (_store, makeStore) => {
  test("an offer is merged by maximum at a common time, never summed, and what it raised is broadcast to every stream", async () => {
    const server = await start({}, makeStore);
    const writer = server.connect();
    const watcher = server.connect();
    await applied(watcher); // subscribed before anything is broadcast
    await applied(
      writer,
      deltaUpdate(seed0, [
        [0, 1, 0.5, t0],
        [0, 3, 0.2, t0],
        [0, 4, 0.5, t0],
      ]),
    );
    await watcher.until(() => broadcasts(watcher).length === 1, "the update's broadcast");

    const offerer = server.connect();
    await applied(
      offerer,
      stateOffer(seed0, [
        [0, 1, 0.3, t0], // lower: stays 0.5
        [0, 2, 0.4, t0], // new: taken
        [0, 3, 0.6, t0], // higher: 0.6, not 0.8
        // Decayed to the common time t0 + 10 s the held 0.5 is still the larger.
        [0, 4, 0.45, t0 + 10_000],
      ]),
    );
    const raised = [
      { rowId: 0, colId: 2, prob: 0.4, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 3, prob: 0.6, lastUpdateTimeMs: t0 },
    ];
    expect(await held(server)).toEqual([
      { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 },
      ...raised,
      { rowId: 0, colId: 4, prob: 0.5, lastUpdateTimeMs: t0 },
    ]);
    expect(0.5 * decay(10_000)).toBeGreaterThan(0.45);
    // Only what rose is broadcast, to the offerer's stream and the others.
    await watcher.until(() => broadcasts(watcher).length === 2, "the offer's broadcast");
    const sorted = (r: SyncResponse | undefined) =>
      plain(r ?? fail()).sort((a, b) => a.colId - b.colId);
    expect(sorted(broadcasts(watcher)[1])).toEqual(raised);
    expect(sorted(broadcasts(offerer).at(-1))).toEqual(raised);
    expect((await offers(server))["applied"]).toBe(1);
  });

  test("an offer newer than the held value wins when it is larger at the later time, stamped then", async () => {
    const server = await start({}, makeStore);
    const a = server.connect();
    await applied(a, deltaUpdate(seed0, [[1, 1, 0.5, t0]]));
    await applied(a, stateOffer(seed0, [[1, 1, 0.497, t0 + 1_000]]));
    expect(0.5 * decay(1_000)).toBeLessThan(0.497);
    expect(await held(server)).toEqual([
      { rowId: 1, colId: 1, prob: 0.497, lastUpdateTimeMs: t0 + 1_000 },
    ]);
  });

  test("the same view offered from three streams leaves the store as one offer did, and only the first is broadcast", async () => {
    const server = await start({}, makeStore);
    const watcher = server.connect();
    const view = stateOffer(seed0, [
      [0, 1, 0.25, t0],
      [2, 7, 0.75, t0 + 500],
    ]);
    const [first, ...others] = [server.connect(), server.connect(), server.connect()];
    // Every stream subscribed before anything is broadcast.
    for (const client of [watcher, ...others]) await applied(client);
    await applied(first ?? fail(), view);
    const afterOne = await held(server);
    expect(afterOne).toEqual([
      { rowId: 0, colId: 1, prob: 0.25, lastUpdateTimeMs: t0 },
      { rowId: 2, colId: 7, prob: 0.75, lastUpdateTimeMs: t0 + 500 },
    ]);
    for (const other of others) await applied(other, view);
    expect(await held(server)).toEqual(afterOne);
    expect((await offers(server))["applied"]).toBe(3);

    // What the second and third offers published would be queued before this reply.
    await applied(watcher);
    expect(watcher.responses.map((r) => (r.fullState ? "reply" : "broadcast"))).toEqual([
      "reply",
      "broadcast",
      "reply",
    ]);
    for (const other of others) expect(broadcasts(other)).toHaveLength(1);
  });

  test("an offer after learningPeriodMs is refused and counted, changes nothing, and the stream goes on", async () => {
    const server = await start({}, makeStore);
    expect(server.config.learningPeriodMs).toBe(learningPeriodMs);
    const a = server.connect();
    await applied(a, deltaUpdate(seed0, [[0, 1, 0.2, t0]]));
    const before = await held(server);

    // Still learning at exactly learningPeriodMs, as the stores count it…
    server.time.tick(learningPeriodMs);
    expect(await sample(server, "fair_state_learning")).toBe(1);
    await applied(a, stateOffer(seed0, [[0, 2, 0.1, t0]]));
    expect((await offers(server))["applied"]).toBe(1);
    const atTheEnd = await held(server);
    expect(atTheEnd).toHaveLength(2);

    // …and no longer a millisecond later.
    server.time.tick(1);
    expect(await sample(server, "fair_state_learning")).toBe(0);
    await applied(a, stateOffer(seed0, [[0, 1, 0.9, t0 + 30_000]]));
    expect(await held(server)).toEqual(atTheEnd);
    expect(before).toEqual([atTheEnd[0]]);
    expect(await offers(server)).toMatchObject({ applied: 1, learning_over: 1, rejected: 0 });

    // The stream is still open, and a DeltaUpdate on it applies and is broadcast.
    expect(a.ended).toBe(false);
    a.send(deltaUpdate(seed0, [[0, 1, 0.1, t0 + 30_001]]));
    const expected = 0.2 * decay(30_001) + 0.1;
    await a.until(
      () => a.view(seed0).some((b) => b.colId === 1 && Math.abs(b.prob - expected) < 1e-12),
      "the update after the refused offer",
    );
  });

  test("an invalid offer ends the stream with INVALID_ARGUMENT naming the field, applies nothing, and is counted as rejected", async () => {
    const server = await start({}, makeStore);
    const a = server.connect();
    a.send(
      stateOffer(seed0, [
        [0, 1, 1.5, t0],
        [0, 2, 0.5, t0],
      ]),
    );
    const error = await a.closed();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toContain("state_offer.buckets[0].prob");
    expect(await held(server)).toEqual([]);
    expect(await offers(server)).toMatchObject({ applied: 0, rejected: 1 });
  });

  test("an offer of more than maxDeltasPerMessage buckets ends the stream with RESOURCE_EXHAUSTED, applies nothing, and is counted as rejected", async () => {
    const server = await start({ maxDeltasPerMessage: 4 }, makeStore);
    const a = server.connect();
    a.send(
      stateOffer(
        seed0,
        [0, 1, 2, 3, 4].map((col) => [0, col, 0.1, t0] as const),
      ),
    );
    const error = await a.closed();
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.rawMessage).toContain("state_offer.buckets: 5 buckets");
    expect(error?.rawMessage).toContain("maxDeltasPerMessage");
    expect(await held(server)).toEqual([]);
    expect(await offers(server)).toMatchObject({ applied: 0, rejected: 1 });

    // Four fit.
    const b = server.connect();
    await applied(
      b,
      stateOffer(
        seed0,
        [0, 1, 2, 3].map((col) => [0, col, 0.1, t0] as const),
      ),
    );
    expect(await held(server)).toHaveLength(4);
  });

  test("offers for seeds outside the live range are dropped and counted, and the stream goes on", async () => {
    const server = await start({}, makeStore);
    const a = server.connect();
    const ahead = seed0 + BigInt(10 * server.config.windowMs);
    const behind = seed0 - BigInt(10 * server.config.windowMs);
    await applied(a, stateOffer(ahead, [[0, 1, 0.5, t0]]), stateOffer(behind, [[0, 1, 0.5, t0]]));
    expect(await offers(server)).toMatchObject({ too_far_future: 1, too_old: 1, applied: 0 });
    expect(await server.running.server.store.getSeed(ahead)).toEqual([]);
    expect(a.ended).toBe(false);
  });
});

test("an offer a store cannot take ends the stream with UNAVAILABLE, counted as the store's, not as rejected", async () => {
  class FailingOffers extends MapStore {
    override namespace(name: string): StoreNamespace {
      return {
        ...super.namespace(name),
        applyOffer: () =>
          Promise.reject(new StoreError("unavailable", "applyOffer", "connection lost")),
      };
    }
  }
  const server = await start({}, (_config, time) => {
    return new FailingOffers({ now: time.now, timers: time.timers });
  });
  const a = server.connect();
  a.send(stateOffer(seed0, [[0, 1, 0.5, t0]]));
  const error = await a.closed();
  expect(error?.code).toBe(Code.Unavailable);
  expect(error?.rawMessage).toContain("the shared store is unavailable");
  expect(await sample(server, "fair_state_store_unavailable_total", { operation: "offer" })).toBe(
    1,
  );
  expect((await offers(server))["rejected"]).toBe(0);
});

describe("a new epoch under a running server (the test-only store's)", () => {
  test("ends every open stream, on every transport, with UNAVAILABLE; a new stream is told the new epoch", async () => {
    const server = await start({}, mapStore({ epochs: true }));
    const store = mapStoreOf(server);
    const old = store.epoch.id;
    const open = [...transports.map(([, make]) => server.open(make)), server.connect("checkout")];
    for (const client of open) expect(await epochOf(client)).toBe(old);

    const next = store.newEpoch();
    expect(next.id).not.toBe(old);
    for (const client of open) {
      const error = await client.closed();
      expect(error?.code).toBe(Code.Unavailable);
      expect(error?.rawMessage).toBe(epochChanged);
    }
    expect(await sample(server, "fair_state_streams_closed_total", { code: "unavailable" })).toBe(
      open.length,
    );
    for (const [, make] of transports) expect(await epochOf(server.open(make))).toBe(next.id);
    expect(await sample(server, "fair_state_connected_clients")).toBe(transports.length);
  });

  test("the same epoch told again ends nothing", async () => {
    const server = await start({}, mapStore({ epochs: true }));
    const store = mapStoreOf(server);
    const a = server.connect();
    const id = await epochOf(a);
    store.newEpoch(store.epoch.id);
    await applied(a, deltaUpdate(seed0, [[0, 1, 0.5, t0]]));
    expect(a.ended).toBe(false);
    expect(a.headers?.get(EPOCH_HEADER)).toBe(id);
  });

  test("a stream that opens as the epoch changes is ended too, never left on the old one", async () => {
    let changeOnNextRead = false;
    const server = await start({}, (config, time) => {
      const store = mapStore({ epochs: true })(config, time) as MapStore;
      const real = store.epochs as StoreEpochs;
      // The epoch changes just after the new stream read it for its headers.
      const racing: StoreEpochs = {
        get current() {
          const current = real.current;
          if (changeOnNextRead) {
            changeOnNextRead = false;
            queueMicrotask(() => store.newEpoch());
          }
          return current;
        },
        onEpochChange: (listener) => real.onEpochChange(listener),
      };
      Object.defineProperty(store, "epochs", { value: racing });
      return store;
    });
    for (const [, make] of transports) {
      const store = mapStoreOf(server);
      const old = store.epoch.id;
      changeOnNextRead = true;
      const racer = server.open(make);
      racer.send(stateRequest(seed0));
      const error = await racer.closed();
      expect(store.epoch.id).not.toBe(old);
      expect(error?.code).toBe(Code.Unavailable);
      expect(error?.rawMessage).toBe(epochChanged);
      // The next one is told the epoch now in force, and served.
      expect(await epochOf(server.open(make))).toBe(store.epoch.id);
    }
  });

  test("learning starts again with the new epoch: offers refused in the old one's old age are merged again", async () => {
    const server = await start({}, mapStore({ epochs: true }));
    const store = mapStoreOf(server);
    const a = server.connect();
    server.time.tick(learningPeriodMs + 1);
    await applied(a, stateOffer(seed0, [[0, 1, 0.5, t0]]));
    expect(await held(server)).toEqual([]);

    store.newEpoch();
    await a.closed();
    const b = server.connect();
    await applied(b, stateOffer(seed0, [[0, 1, 0.5, t0]]));
    expect(await held(server)).toEqual([{ rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 }]);
    expect(await offers(server)).toMatchObject({ learning_over: 1, applied: 1 });
  });

  test("fair_state_epoch_info, fair_state_epoch_age_seconds and fair_state_learning follow the epoch and the fake clock", async () => {
    const server = await start({}, mapStore({ epochs: true }));
    const store = mapStoreOf(server);
    const first = store.epoch.id;
    const info = async () => samples(server, "fair_state_epoch_info");
    expect(await info()).toEqual([{ labels: { epoch: first }, value: 1 }]);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBe(0);
    expect(await sample(server, "fair_state_learning")).toBe(1);

    server.time.tick(12_500);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBe(12.5);
    expect(await sample(server, "fair_state_learning")).toBe(1);
    server.time.tick(learningPeriodMs);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBe(42.5);
    expect(await sample(server, "fair_state_learning")).toBe(0);

    const second = store.newEpoch().id;
    expect(await info()).toEqual([{ labels: { epoch: second }, value: 1 }]);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBe(0);
    expect(await sample(server, "fair_state_learning")).toBe(1);
    server.time.tick(learningPeriodMs + 1);
    expect(await sample(server, "fair_state_learning")).toBe(0);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBe(30.001);
  });

  test("without epochs: no fair_state_epoch_info series, the age NaN, not learning", async () => {
    const server = await start({}, mapStore());
    expect(await samples(server, "fair_state_epoch_info")).toEqual([]);
    expect(await sample(server, "fair_state_epoch_age_seconds")).toBeNaN();
    expect(await sample(server, "fair_state_learning")).toBe(0);
  });
});

describe("fair_state_snapshot_age_seconds", () => {
  test("is NaN without snapshotPath", async () => {
    const server = await start();
    expect(server.config.snapshotPath).toBeUndefined();
    expect(await sample(server, "fair_state_snapshot_age_seconds")).toBeNaN();
    server.time.tick(60_000);
    expect(await sample(server, "fair_state_snapshot_age_seconds")).toBeNaN();
  });

  test("with snapshotPath: NaN until the first snapshot, then its age on the fake clock; a restored snapshot's age until the next write", async () => {
    const snapshotPath = join(await tempDir(), "state.snapshot");
    const first = await start({ snapshotPath });
    expect(await sample(first, "fair_state_snapshot_age_seconds")).toBeNaN();
    await applied(first.connect(), deltaUpdate(seed0, [[0, 1, 0.5, t0]]));

    first.time.tick(first.config.snapshotIntervalMs);
    await vi.waitUntil(
      async () => (await sample(first, "fair_state_snapshot_writes_total", { result: "ok" })) === 1,
      { timeout: 10_000 },
    );
    expect(await sample(first, "fair_state_snapshot_age_seconds")).toBe(0);
    first.time.tick(4_000);
    expect(await sample(first, "fair_state_snapshot_age_seconds")).toBe(4);
    // The last snapshot is written at shutdown, at t0 + 34 s.
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await start({ snapshotPath }, undefined, { startMs: t0 + 94_000 });
    expect(await sample(second, "fair_state_snapshot_age_seconds")).toBe(60);
    second.time.tick(1_500);
    expect(await sample(second, "fair_state_snapshot_age_seconds")).toBe(61.5);
    expect(await held(second)).toEqual([{ rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 }]);
  });
});

test("stateDir: a memory-store server makes the directory, snapshots to <stateDir>/state.snapshot, and the next server on it restores the view in a new epoch", async () => {
  const stateDir = join(await tempDir(), "nested", "missing");
  const { config } = loadConfig({ argv: [], env: { FAIR_STATE_STATE_DIR: stateDir } });
  const snapshotPath = join(stateDir, "state.snapshot");
  expect(config.snapshotPath).toBe(snapshotPath);
  const settings = { stateDir, snapshotPath: config.snapshotPath };

  const first = await start(settings);
  expect((await stat(stateDir)).isDirectory()).toBe(true);
  const a = first.connect();
  const firstEpoch = await epochOf(a);
  await applied(a, deltaUpdate(seed0, [[3, 4, 0.25, t0]]));
  await first.close();
  servers.splice(servers.indexOf(first), 1);
  expect((await stat(snapshotPath)).size).toBeGreaterThan(0);

  const second = await start(settings, undefined, { startMs: t0 + 5_000 });
  const b = second.connect();
  const secondEpoch = await epochOf(b);
  expect(secondEpoch).toMatch(/\S/);
  expect(secondEpoch).not.toBe(firstEpoch);
  expect(b.view(seed0)).toEqual([{ rowId: 3, colId: 4, prob: 0.25, lastUpdateTimeMs: t0 }]);
  // A new epoch is a new learning period: its clients' offers are merged.
  expect(await sample(second, "fair_state_learning")).toBe(1);
});

function fail(): never {
  throw new Error("missing value");
}
