// The Sync service on a real HTTP/2 listener (127.0.0.1, port 0), driven by
// Connect gRPC clients, with the server's clock and timers faked. Every test
// runs twice: on the in-memory store the server makes from its config, and
// on a test-only Store (map-store.ts) handed to it, which the server knows
// only through the Store contract.

import { connect, constants } from "node:http2";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  DECAY_RATE_HEADER,
  StateService,
  SyncRequestSchema,
  type SyncResponse,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import { type DeltaUpdateInput, StoreError, type StoreNamespace } from "@fair/state-store";
import { Conditions } from "@fair/testing";
import { afterEach, describe, expect, test, vi } from "vitest";
import {
  bucketsPerPart,
  connectBinary,
  connectJson as connectJsonEncoding,
  grpcFrames,
  type SyncEncoding,
} from "../src/responses.js";
import {
  byKey,
  connectJson,
  deltaUpdate,
  fillSeed,
  grpcFrame,
  type MakeStore,
  plain,
  rawSyncStream,
  readResponses,
  type SyncClient,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
  windowMs,
} from "./harness.js";
import { MapStore } from "./map-store.js";

const lambda = 0.01;
const decay = (ms: number) => Math.exp((-lambda * ms) / 1000);

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

const stores: [string, MakeStore | undefined][] = [
  ["the in-memory store", undefined],
  [
    "a test-only Store",
    (config, time) =>
      new MapStore({
        windowMs: config.windowMs,
        seedEvictionTtlMs: config.seedEvictionTtlMs,
        decayRatePerSecond: config.decayRatePerSecond,
        maxClockSkewMs: config.maxClockSkewMs,
        now: time.now,
        timers: time.timers,
      }),
  ],
];

/** Waits until every client's view of `seed` has `prob` at (row, col). */
async function allSee(clients: SyncClient[], row: number, col: number, prob: number) {
  await Promise.all(
    clients.map((c) =>
      c.until(
        () =>
          c
            .view(seed0)
            .some((b) => b.rowId === row && b.colId === col && Math.abs(b.prob - prob) < 1e-12),
        `prob ${prob} at (${row}, ${col})`,
      ),
    ),
  );
}

/** Buckets produced for full-state replies so far (counted as each part is made). */
async function fullStateBucketsMade(): Promise<number> {
  const { values } = await server.running.server.metrics.fullStateBucketsSent.get();
  return values[0]?.value ?? 0;
}

/** Raw clients that stop reading, one per protocol: content type, their StateRequest, how the server encodes a part for them. */
const stoppedReaders: [string, string, () => Buffer, SyncEncoding<unknown>][] = [
  [
    "gRPC (the server's own path)",
    "application/grpc+proto",
    () => grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))),
    grpcFrames,
  ],
  [
    "gRPC-Web (through Connect)",
    "application/grpc-web+proto",
    () => grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))),
    connectBinary,
  ],
  [
    "Connect JSON (through Connect)",
    "application/connect+json",
    () => grpcFrame(Buffer.from(toJsonString(SyncRequestSchema, stateRequest(seed0)))),
    connectJsonEncoding,
  ],
];

describe.each(stores)("on %s", (_store, makeStore) => {
  describe("aggregation across clients", () => {
    test("deltas from three clients are decayed, summed and clamped, and every client (sender included) gets the result", async () => {
      server = await startServer({}, makeStore);
      const clients = [server.connect(), server.connect(), server.connect()];
      const [a, b, c] = clients as [SyncClient, SyncClient, SyncClient];

      a.send(deltaUpdate(seed0, [[0, 5, 0.3, t0]]));
      await allSee(clients, 0, 5, 0.3);

      b.send(deltaUpdate(seed0, [[0, 5, 0.4, t0 + 1_000]]));
      const afterB = 0.3 * decay(1_000) + 0.4;
      await allSee(clients, 0, 5, afterB);

      c.send(deltaUpdate(seed0, [[0, 5, 0.5, t0 + 2_000]]));
      await allSee(clients, 0, 5, 1);
      expect(c.view(seed0)).toEqual([
        { rowId: 0, colId: 5, prob: 1, lastUpdateTimeMs: t0 + 2_000 },
      ]);

      // A late delta is decayed to the bucket's time; the timestamp stays.
      a.send(deltaUpdate(seed0, [[0, 5, -0.2, t0 + 500]]));
      const afterLate = 1 - 0.2 * decay(1_500);
      await allSee(clients, 0, 5, afterLate);
      for (const client of clients) {
        expect(client.view(seed0)).toEqual([
          { rowId: 0, colId: 5, prob: afterLate, lastUpdateTimeMs: t0 + 2_000 },
        ]);
      }
    });

    test("several deltas in one update apply in order, and each changed bucket is broadcast once", async () => {
      server = await startServer({}, makeStore);
      const a = server.connect();
      a.send(
        deltaUpdate(seed0, [
          [1, 7, 0.04, t0],
          [1, 7, 0.04, t0],
          [2, 9, 0.04, t0],
        ]),
      );
      await a.until(() => a.responses.length === 1);
      expect(plain(a.responses[0] ?? fail())).toEqual([
        { rowId: 1, colId: 7, prob: 0.08, lastUpdateTimeMs: t0 },
        { rowId: 2, colId: 9, prob: 0.04, lastUpdateTimeMs: t0 },
      ]);
    });

    test("the response headers carry the server's window and decay rate", async () => {
      server = await startServer({ decayRatePerSecond: 0.02 }, makeStore);
      const a = server.connect();
      a.send(stateRequest(seed0));
      await a.until(() => a.headers !== undefined);
      expect(a.headers?.get(WINDOW_MS_HEADER)).toBe(String(windowMs));
      expect(a.headers?.get(DECAY_RATE_HEADER)).toBe("0.02");
    });

    test("namespaces are isolated key spaces", async () => {
      server = await startServer({}, makeStore);
      const checkout = server.connect("checkout");
      const search = server.connect("search");
      checkout.send(deltaUpdate(seed0, [[0, 1, 0.5, t0]]));
      await checkout.until(() => checkout.view(seed0).length === 1);
      search.send(stateRequest(seed0));
      await search.until(() => search.fullStateReplies(seed0).length === 1);
      expect(search.view(seed0)).toEqual([]);
      expect(search.responses).toHaveLength(1);
    });

    test("interval mode coalesces per key and flushes every broadcastIntervalMs", async () => {
      server = await startServer({ broadcastIntervalMs: 250 }, makeStore);
      const a = server.connect();
      a.send(deltaUpdate(seed0, [[0, 1, 0.1, t0]]), deltaUpdate(seed0, [[0, 1, 0.1, t0]]));
      a.send(stateRequest(seed0)); // answered at once: proves both updates were applied
      await a.until(() => a.fullStateReplies(seed0).length === 1);
      expect(a.responses).toHaveLength(1);
      server.time.tick(250);
      await a.until(() => a.responses.length === 2);
      expect(plain(a.responses[1] ?? fail())).toEqual([
        { rowId: 0, colId: 1, prob: 0.2, lastUpdateTimeMs: t0 },
      ]);
    });
  });

  describe("codecs", () => {
    test("binary (encoded once for all streams) and JSON streams receive the same broadcast", async () => {
      server = await startServer({}, makeStore);
      const binary = server.connect();
      const sessions = new Http2SessionManager(`http://${server.running.grpcAddress}`);
      const json = createClient(
        StateService,
        createConnectTransport({
          baseUrl: `http://${server.running.grpcAddress}`,
          httpVersion: "2",
          useBinaryFormat: false,
          sessionManager: sessions,
        }),
      );
      const abort = new AbortController();
      const received: SyncResponse[] = [];
      const outbox = (async function* () {
        yield create(SyncRequestSchema, {
          request: { case: "stateRequest", value: { seed: seed0 } },
        });
        await new Promise((resolve) => abort.signal.addEventListener("abort", resolve));
      })();
      const reading = (async () => {
        for await (const response of json.sync(outbox, { signal: abort.signal }))
          received.push(response);
      })().catch(() => undefined);
      try {
        binary.send(stateRequest(seed0));
        await binary.until(() => binary.responses.length === 1);
        binary.send(
          deltaUpdate(seed0, [
            [0, 3, 0.25, t0],
            [1, 4, 0.5, t0 + 1],
          ]),
        );
        await binary.until(() => binary.responses.length === 2);
        const expected = [
          { rowId: 0, colId: 3, prob: 0.25, lastUpdateTimeMs: t0 },
          { rowId: 1, colId: 4, prob: 0.5, lastUpdateTimeMs: t0 + 1 },
        ];
        expect(plain(binary.responses[1] ?? fail())).toEqual(expected);
        await vi.waitUntil(() => received.length === 2, { timeout: 10_000 });
        expect(plain(received[1] ?? fail())).toEqual(expected);
        expect(received[1]?.seed).toBe(seed0);
      } finally {
        abort.abort();
        await reading;
        sessions.abort();
      }
    });
  });

  describe("full state", () => {
    test("a known seed gets every bucket, an unknown seed one empty reply, both marked full_state and last", async () => {
      server = await startServer({}, makeStore);
      const writer = server.connect();
      writer.send(
        deltaUpdate(seed0, [
          [0, 1, 0.5, t0],
          [3, 4, 0.25, t0],
        ]),
      );
      await writer.until(() => writer.responses.length === 1);

      const late = server.connect();
      const nextWindow = seed0 + BigInt(windowMs);
      late.send(stateRequest(seed0), stateRequest(nextWindow));
      await late.until(() => late.responses.length === 2);
      const [known, unknown] = late.responses;
      expect(known).toMatchObject({ seed: seed0, fullState: true, fullStateLast: true });
      expect(late.view(seed0)).toEqual([
        { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 },
        { rowId: 3, colId: 4, prob: 0.25, lastUpdateTimeMs: t0 },
      ]);
      expect(unknown).toMatchObject({
        seed: nextWindow,
        fullState: true,
        fullStateLast: true,
        buckets: [],
      });
      // Full-state replies go to the requester only.
      expect(writer.responses).toHaveLength(1);
    });

    test("a reply too large for one message is split, and only its last part is marked last", async () => {
      server = await startServer({ maxMessageBytes: 1024 }, makeStore); // 24 buckets a part
      const a = server.connect();
      const deltas = Array.from({ length: 60 }, (_, i) => [0, i, 0.1, t0] as const);
      a.send(deltaUpdate(seed0, deltas.slice(0, 30)), deltaUpdate(seed0, deltas.slice(30)));
      a.send(stateRequest(seed0));
      await a.until(() => a.fullStateReplies(seed0).some((r) => r.fullStateLast));
      const parts = a.fullStateReplies(seed0);
      expect(parts.map((p) => [p.buckets.length, p.fullStateLast])).toEqual([
        [24, false],
        [24, false],
        [12, true],
      ]);
      expect(new Set(parts.flatMap((p) => plain(p).map((b) => b.colId))).size).toBe(60);
    });

    test("a seed of several parts arrives complete, each part within its encoding's cap, only the last marked last", async () => {
      server = await startServer({}, makeStore);
      const expected = await fillSeed(server.running.server.store, 30_000);
      const cap = bucketsPerPart(server.config.maxMessageBytes, grpcFrames);
      expect(cap).toBe(8192);
      const a = server.connect();
      a.send(stateRequest(seed0));
      await a.until(() => a.fullStateReplies(seed0).some((r) => r.fullStateLast), "the last part");

      const parts = a.fullStateReplies(seed0);
      expect(parts.map((p) => p.fullStateLast)).toEqual([false, false, false, true]);
      for (const part of parts) expect(part.buckets.length).toBeLessThanOrEqual(cap);
      expect(byKey(a.view(seed0))).toEqual(expected);
    });

    test("a Connect JSON client gets the full state of a seed of 100,000 buckets, in parts sized for JSON", async () => {
      server = await startServer({}, makeStore);
      const expected = await fillSeed(server.running.server.store, 100_000);
      const json = server.open(connectJson);
      json.send(stateRequest(seed0));
      await json.until(
        () => json.fullStateReplies(seed0).some((r) => r.fullStateLast),
        "the last part",
      );

      const parts = json.fullStateReplies(seed0);
      const cap = bucketsPerPart(server.config.maxMessageBytes, connectJsonEncoding);
      expect(cap).toBe(1024);
      expect(parts).toHaveLength(Math.ceil(100_000 / cap));
      for (const part of parts) expect(part.buckets.length).toBeLessThanOrEqual(cap);
      expect(byKey(json.view(seed0))).toEqual(expected);
    });

    test("a broadcast published while a reply is sent goes between its parts, and the requester ends with the latest value of every key", async () => {
      server = await startServer({}, makeStore);
      const expected = await fillSeed(server.running.server.store, 40_000);
      const cap = bucketsPerPart(server.config.maxMessageBytes, grpcFrames);
      const session = connect(`http://${server.running.grpcAddress}`, {
        settings: { initialWindowSize: 65_535 },
      });
      session.on("error", () => {});
      try {
        // The requester reads nothing until the first part is out and a change is published.
        const requester = rawSyncStream(session);
        requester.pause();
        requester.write(grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))));
        await vi.waitUntil(async () => (await fullStateBucketsMade()) > 0, { timeout: 10_000 });
        const writer = server.connect();
        writer.send(deltaUpdate(seed0, [[0, 0, 0.5, t0]]));
        await writer.until(() => writer.view(seed0).length === 1, "the broadcast");
        // The next part is read from the store only once the first is taken.
        expect(await fullStateBucketsMade()).toBe(cap);

        const received: SyncResponse[] = [];
        readResponses(requester, received);
        await vi.waitUntil(() => received.some((r) => r.fullStateLast), { timeout: 10_000 });
        const kind = (r: SyncResponse) =>
          r.fullStateLast ? "last" : r.fullState ? "part" : "broadcast";
        expect(received.map(kind)).toEqual(["part", "broadcast", "part", "part", "part", "last"]);
        const seen = new Map<string, number>();
        for (const response of received) {
          for (const b of plain(response)) seen.set(`${b.rowId}:${b.colId}`, b.prob);
        }
        expected.set("0:0", (expected.get("0:0") ?? 0) + 0.5);
        expect(seen.size).toBe(expected.size);
        for (const [key, prob] of expected) expect(seen.get(key), key).toBeCloseTo(prob, 12);
      } finally {
        session.destroy();
      }
    });

    describe.each(stoppedReaders)(
      "a client that asks for a big seed over %s and stops reading",
      (_path, contentType, request, encoding) => {
        test("holds the server to about one part, and is cut off after maxStallMs while a stream in another namespace keeps receiving", async () => {
          server = await startServer({}, makeStore);
          await fillSeed(server.running.server.store, 100_000);
          const cap = bucketsPerPart(server.config.maxMessageBytes, encoding);
          const healthy = server.connect("other");
          healthy.send(stateRequest(seed0));
          await healthy.until(() => healthy.fullStateReplies(seed0).length === 1, "its reply");

          // A raw client that sends one StateRequest and never reads: HTTP/2
          // flow control (a 64 KiB window) fills with the first part.
          const session = connect(`http://${server.running.grpcAddress}`, {
            settings: { initialWindowSize: 65_535 },
          });
          session.on("error", () => {});
          try {
            const stalled = rawSyncStream(session, contentType);
            stalled.pause();
            stalled.write(request());
            await vi.waitUntil(async () => (await fullStateBucketsMade()) > 0, { timeout: 10_000 });

            // No broadcast waits for it, so only the server's own stall limit can cut it off.
            const { time } = server;
            const hub = server.running.server.hub;
            time.tick(9_000);
            expect(hub.stats().slowConsumerCloses).toBe(0);
            time.tick(3_500);
            expect(hub.stats().slowConsumerCloses).toBe(1);
            // Reset, since it reads nothing (a status would wait behind its unread data).
            await new Promise((resolve) => stalled.once("close", resolve));
            expect(stalled.rstCode).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
            // Of the 100,000 buckets (over ten parts), the server read and encoded one part.
            expect(100_000 / cap).toBeGreaterThan(10);
            expect(await fullStateBucketsMade()).toBe(cap);

            healthy.send(deltaUpdate(seed0, [[0, 1, 0.5, t0]]));
            await healthy.until(() => healthy.view(seed0).length === 1, "a later broadcast");
            expect(healthy.error).toBeUndefined();
            const disconnects =
              await server.running.server.metrics.registry.getSingleMetricAsString(
                "fair_state_slow_consumer_disconnects_total",
              );
            expect(disconnects).toMatch(/^fair_state_slow_consumer_disconnects_total 1$/m);
            // Whichever path served it, the stream ends RESOURCE_EXHAUSTED and lets go of its part.
            const closed = () =>
              server.running.server.metrics.registry.getSingleMetricAsString(
                "fair_state_streams_closed_total",
              );
            await vi.waitUntil(async () => /code="resource_exhausted"} 1$/m.test(await closed()), {
              timeout: 10_000,
            });
          } finally {
            session.destroy();
          }
        });
      },
    );

    test("a client that ends its side still gets the replies it asked for, then the stream ends OK", async () => {
      server = await startServer({}, makeStore);
      const a = server.connect();
      a.send(stateRequest(seed0));
      a.end();
      expect(await a.closed()).toBeUndefined();
      expect(a.fullStateReplies(seed0)).toHaveLength(1);
    });
  });

  describe("seeds", () => {
    test("eviction drops old seeds: their state is gone and later deltas for them are dropped and counted", async () => {
      server = await startServer({}, makeStore);
      const a = server.connect();
      a.send(deltaUpdate(seed0, [[0, 1, 0.5, t0]]));
      await a.until(() => a.responses.length === 1);

      server.time.tick(server.config.seedEvictionTtlMs + windowMs);
      const later = Number(seed0) + server.config.seedEvictionTtlMs + windowMs;
      const current = BigInt(Math.floor(later / windowMs) * windowMs);
      a.send(deltaUpdate(seed0, [[0, 1, 0.5, later]]), stateRequest(seed0));
      // A delta for the current window after the dropped one proves the stream goes on.
      a.send(deltaUpdate(current, [[0, 2, 0.1, later]]));
      await a.until(() => a.responses.some((r) => r.seed === current));
      expect(a.fullStateReplies(seed0)).toMatchObject([{ buckets: [] }]);
      expect(await server.running.server.store.stats()).toMatchObject({
        seeds: 1,
        evictedSeeds: 1,
        droppedDeltas: { too_old: 1, too_far_future: 0 },
      });
    });

    test("seeds more than two windows ahead are refused and counted; the stream goes on", async () => {
      server = await startServer({}, makeStore);
      const a = server.connect();
      a.send(deltaUpdate(seed0 + 3n * BigInt(windowMs), [[0, 1, 0.5, t0]]));
      a.send(deltaUpdate(seed0 + 2n * BigInt(windowMs), [[0, 1, 0.5, t0]]));
      await a.until(() => a.responses.length === 1);
      expect(a.responses[0]?.seed).toBe(seed0 + 2n * BigInt(windowMs));
      expect((await server.running.server.store.stats()).droppedDeltas.too_far_future).toBe(1);
    });

    test("a timestamp too far ahead of the server clock is clamped to now plus the allowed skew", async () => {
      server = await startServer({}, makeStore);
      const a = server.connect();
      a.send(deltaUpdate(seed0, [[0, 1, 0.5, t0 + 3_600_000]]));
      await a.until(() => a.responses.length === 1);
      expect(a.view(seed0)[0]?.lastUpdateTimeMs).toBe(t0 + server.config.maxClockSkewMs);
      expect((await server.running.server.store.stats()).clampedTimestamps).toBe(1);
    });
  });
});

/** The test-only store, whose reads of a seed fail (as Redis going away would) after `pages` pages. */
class FailingReads extends MapStore {
  pages = Number.POSITIVE_INFINITY;

  override namespace(name: string): StoreNamespace {
    const inner = super.namespace(name);
    return {
      ...inner,
      readSeed: async (seed, cursor, limit) => {
        if (this.pages-- <= 0) throw new StoreError("unavailable", "readSeed", "connection lost");
        return inner.readSeed(seed, cursor, limit);
      },
    };
  }
}

test("a store that fails in the middle of a reply ends the stream with UNAVAILABLE after the parts already sent, counted", async () => {
  let store: FailingReads | undefined;
  server = await startServer({}, (_config, time) => {
    store = new FailingReads({ now: time.now, timers: time.timers });
    return store;
  });
  await fillSeed(server.running.server.store, 30_000);
  if (store) store.pages = 2;
  const a = server.connect();
  a.send(stateRequest(seed0));
  const error = await a.closed();

  expect(error?.code).toBe(Code.Unavailable);
  expect(error?.message).toContain("the shared store is unavailable");
  expect(a.fullStateReplies(seed0).map((r) => r.fullStateLast)).toEqual([false, false]);
  expect(
    await server.running.server.metrics.registry.getSingleMetricAsString(
      "fair_state_store_unavailable_total",
    ),
  ).toContain('fair_state_store_unavailable_total{operation="get_seed"} 1');
});

function fail(): never {
  throw new Error("missing value");
}

/** The test-only store, whose applies wait until the test releases them (a slow remote store). */
class HeldApplies extends MapStore {
  readonly started: DeltaUpdateInput[] = [];
  readonly #releases: (() => void)[] = [];
  readonly #conditions = new Conditions();

  until(condition: () => boolean): Promise<void> {
    return this.#conditions.until(condition);
  }

  /** Lets every apply started so far finish. */
  release(): void {
    for (const release of this.#releases.splice(0)) release();
  }

  override namespace(name: string): StoreNamespace {
    const inner = super.namespace(name);
    return {
      ...inner,
      applyUpdate: async (update) => {
        this.started.push(update);
        this.#conditions.notify();
        await new Promise<void>((resolve) => this.#releases.push(resolve));
        return inner.applyUpdate(update);
      },
    };
  }
}

test("a stream's updates reach a slow store without waiting for each other, in order; a StateRequest waits for them", async () => {
  let store: HeldApplies | undefined;
  server = await startServer({}, (_config, time) => {
    store = new HeldApplies({ now: time.now, timers: time.timers });
    return store;
  });
  const held = store as HeldApplies;
  const a = server.connect();
  a.send(
    deltaUpdate(seed0, [[0, 1, 0.25, t0]]),
    deltaUpdate(seed0, [[0, 1, 0.25, t0]]),
    deltaUpdate(seed0, [[0, 2, 0.5, t0]]),
    stateRequest(seed0),
  );
  // All three are with the store before the first is done.
  await held.until(() => held.started.length === 3);
  expect(held.started.map((u) => u.deltas.map((d) => Number(d.colId)))).toEqual([[1], [1], [2]]);
  expect(a.fullStateReplies(seed0)).toEqual([]);
  held.release();
  await a.until(() => a.fullStateReplies(seed0).length === 1);
  expect(byKey(plain(a.fullStateReplies(seed0)[0] as SyncResponse))).toEqual(
    new Map([
      ["0:1", 0.5],
      ["0:2", 0.5],
    ]),
  );
});
