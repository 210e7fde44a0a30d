// The client against an in-memory Sync service (Connect's router transport)
// on fake time: what it sends, when, and what it does with what comes back.
import { Code, ConnectError } from "@connectrpc/connect";
import { DECAY_RATE_HEADER, WINDOW_MS_HEADER } from "@fair/state-proto";
import { afterEach, describe, expect, test } from "vitest";
import {
  closeClients,
  connected,
  seed0,
  settle,
  start,
  t0,
  windowMs,
} from "../test/fake-sync-server.js";
import { type BucketValue, StateClient, StateClientError } from "./index.js";

afterEach(closeClients);

describe("sending", () => {
  test("adjustments coalesce per bucket, decayed to the latest time, and go out every flushIntervalMs", async () => {
    const { server, time, client } = start({ flushIntervalMs: 50 });
    await connected(client, server);
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    client.sendDeltaUpdate(seed0, [
      { rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 + 1_000 },
    ]);
    client.sendDeltaUpdate(seed0, [
      { rowId: 0, colId: 1, deltaProb: -0.5, lastUpdateTimeMs: t0 + 500 },
    ]);
    client.sendDeltaUpdate(seed0, [{ rowId: 1, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    await settle();
    expect(server.deltaUpdates()).toEqual([]);
    time.tick(50);
    await server.until(() => server.deltaUpdates().length === 1);
    const [update] = server.deltaUpdates();
    expect(update?.seed).toBe(seed0);
    const expected = 0.04 * Math.exp(-0.01) + 0.04 - 0.5 * Math.exp(-0.005);
    expect(
      update?.deltas.map((d) => [
        Number(d.rowId),
        Number(d.colId),
        d.deltaProb,
        Number(d.lastUpdateTimeMs),
      ]),
    ).toEqual([
      [0, 1, expected, t0 + 1_000],
      [1, 1, 0.04, t0],
    ]);
    expect(client.stats()).toMatchObject({
      deltasQueued: 4,
      deltasSent: 2,
      messagesSent: 1,
      pendingBuckets: 0,
    });
  });

  test("a coalesced sum beyond ±1 goes out as ±1, which the server accepts", async () => {
    const { server, time, client } = start();
    await connected(client, server);
    for (let i = 0; i < 30; i++) {
      client.sendDeltaUpdate(seed0, [
        { rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 },
      ]);
    }
    time.tick(50);
    await server.until(() => server.deltaUpdates().length === 1);
    expect(server.deltaUpdates()[0]?.deltas[0]?.deltaProb).toBe(1);
  });

  test("a flush that reaches maxDeltasPerMessage goes out at once, split into messages of that size", async () => {
    const { server, time, client } = start({ maxDeltasPerMessage: 3, flushIntervalMs: 10_000 });
    await connected(client, server);
    client.sendDeltaUpdate(
      seed0,
      Array.from({ length: 7 }, (_, i) => ({
        rowId: 0,
        colId: i,
        deltaProb: 0.04,
        lastUpdateTimeMs: t0,
      })),
    );
    time.tick(0);
    await server.until(() => server.deltaUpdates().length === 3);
    expect(server.deltaUpdates().map((u) => u.deltas.length)).toEqual([3, 3, 1]);
  });

  test("invalid adjustments and adjustments past the pending bound are dropped and counted, never thrown", async () => {
    const { client } = start({ maxPendingBuckets: 2 });
    const ok = { rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 };
    expect(() =>
      client.sendDeltaUpdate(seed0, [
        ok,
        { ...ok, deltaProb: Number.NaN },
        { ...ok, deltaProb: 1.5 },
        { ...ok, rowId: -1 },
        { ...ok, colId: 0.5 },
        { ...ok, lastUpdateTimeMs: Number.POSITIVE_INFINITY },
        { ...ok, colId: 2 },
        { ...ok, colId: 3 },
        ok,
      ]),
    ).not.toThrow();
    expect(() => client.sendDeltaUpdate(-1n, [ok])).not.toThrow();
    expect(client.stats()).toMatchObject({
      deltasQueued: 3,
      pendingBuckets: 2,
      deltasDropped: { invalid: 6, overflow: 1, retries_exhausted: 0, closed: 0 },
    });
  });

  test("the namespace goes in the fair-state-namespace header, the token in authorization", async () => {
    const { server, client } = start({ namespace: "checkout", authToken: "t0k3n-for-checkout" });
    await connected(client, server);
    expect(server.streams[0]?.namespace).toBe("checkout");
    expect(server.streams[0]?.authorization).toBe("Bearer t0k3n-for-checkout");
  });
});

describe("receiving", () => {
  test("broadcasts and full-state replies reach onStateUpdate and listeners as plain numbers", async () => {
    const seen: [bigint, readonly BucketValue[], boolean][] = [];
    const { server, client } = start({ onStateUpdate: (...args) => seen.push(args) });
    const statuses: string[] = [];
    client.subscribe({ onStatusChange: (s) => statuses.push(s) });
    await connected(client, server);
    const broadcast = new Promise<void>((resolve) =>
      client.subscribe({ onStateUpdate: (_seed, _buckets, fullState) => fullState || resolve() }),
    );
    server.streams[0]?.send({
      seed: seed0,
      buckets: [
        {
          $typeName: "fair.state.v1.Bucket",
          rowId: 2n,
          colId: 9n,
          prob: 0.5,
          lastUpdateTimeMs: BigInt(t0),
        },
      ],
    });
    await broadcast;
    expect(seen).toEqual([
      [seed0, [], true], // the reply to the StateRequest sent on connecting
      [seed0, [{ rowId: 2, colId: 9, prob: 0.5, lastUpdateTimeMs: t0 }], false],
    ]);
    expect(statuses).toEqual(["connected"]);
  });

  test("a full-state request made while the stream is still opening is sent on that stream", async () => {
    const { server, client } = start();
    client.connect();
    const reply = client.requestFullState(seed0 + 300_000n);
    await expect(reply).resolves.toEqual([]);
    expect(server.streams).toHaveLength(1);
  });

  test("requestFullState resolves with every part of a split reply, on the part marked last", async () => {
    const { server, client } = start();
    await connected(client, server);
    server.answerStateRequests = false;
    const reply = client.requestFullState(seed0);
    await server.until(() => (server.streams[0]?.received.length ?? 0) >= 2);
    const bucket = (col: number) => ({
      $typeName: "fair.state.v1.Bucket" as const,
      rowId: 0n,
      colId: BigInt(col),
      prob: 0.1,
      lastUpdateTimeMs: BigInt(t0),
    });
    server.streams[0]?.send({ seed: seed0, buckets: [bucket(1)], fullState: true });
    server.streams[0]?.send({ seed: seed0, buckets: [bucket(2)] }); // a broadcast in between
    server.streams[0]?.send({
      seed: seed0,
      buckets: [bucket(3)],
      fullState: true,
      fullStateLast: true,
    });
    expect((await reply).map((b) => b.colId)).toEqual([1, 3]);
  });

  test("requestFullState rejects with timeout, aborted or closed", async () => {
    const { server, time, client } = start({ requestTimeoutMs: 1_000 });
    await connected(client, server);
    server.answerStateRequests = false;
    const timedOut = client.requestFullState(seed0);
    time.tick(1_000);
    await expect(timedOut).rejects.toMatchObject({ code: "timeout" });
    const abort = new AbortController();
    const aborted = client.requestFullState(seed0, { signal: abort.signal });
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ code: "aborted" });
    const closed = client.requestFullState(seed0);
    await client.close();
    await expect(closed).rejects.toMatchObject({ code: "closed" });
    await expect(client.requestFullState(seed0)).rejects.toBeInstanceOf(StateClientError);
  });
});

describe("connection", () => {
  test("on connecting it asks for the current window when it holds no seed, so the server answers at once", async () => {
    const { server, client } = start();
    await connected(client, server);
    const first = server.streams[0]?.received[0];
    expect(first?.request).toMatchObject({ case: "stateRequest", value: { seed: seed0 } });
  });

  test("after a lost stream it backs off with jitter, reconnects, re-requests held seeds and sends what waited", async () => {
    const { server, time, client } = start({
      initialBackoffMs: 100,
      random: () => 0.5,
      flushIntervalMs: 10,
    });
    await connected(client, server);
    const held = client.requestFullState(seed0 + BigInt(windowMs));
    await held;
    const events: string[] = [];
    client.on("disconnected", (e) => events.push(`disconnected: ${e?.code}`));
    client.on("connected", () => events.push("connected"));
    server.streams[0]?.fail(new ConnectError("going away", Code.Unavailable));
    await new Promise<void>((resolve) => client.on("disconnected", () => resolve()));
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    time.tick(49); // the flush comes due while disconnected: the adjustment waits
    await settle();
    expect(client.status).toBe("disconnected");
    expect(server.streams).toHaveLength(1);
    expect(client.stats().pendingBuckets).toBe(1);
    time.tick(1); // the backoff, 0.5 (jitter) × 100 ms, is over
    await server.until(() => server.deltaUpdates(1).length === 1);
    const requested = server.streams[1]?.received.flatMap((r) =>
      r.request.case === "stateRequest" ? [r.request.value.seed] : [],
    );
    expect(requested).toEqual([seed0 + BigInt(windowMs)]);
    expect(events).toEqual(["disconnected: stream_error", "connected"]);
    expect(client.stats()).toMatchObject({ reconnects: 1, status: "connected" });
  });

  test("a server whose decay rate differs is reported; with refuse the client closes", async () => {
    const warn = start();
    warn.server.headers = { [WINDOW_MS_HEADER]: "300000", [DECAY_RATE_HEADER]: "0.02" };
    const errors: StateClientError[] = [];
    const told: string[] = [];
    warn.client.on("error", (e) => errors.push(e));
    warn.client.subscribe({ onConfigMismatch: (message) => told.push(message) });
    await connected(warn.client, warn.server);
    expect(errors[0]?.code).toBe("config_mismatch");
    expect(errors[0]?.message).toContain("decay rate is 0.02/s");
    // Listeners (a linked tracker) hear of it too.
    expect(told).toEqual([errors[0]?.message]);
    expect(warn.client.status).toBe("connected");
    await warn.client.close();

    const refuse = start({ onConfigMismatch: "refuse" });
    refuse.server.headers = { [WINDOW_MS_HEADER]: "300000", [DECAY_RATE_HEADER]: "0.02" };
    refuse.client.connect();
    await new Promise<void>((r) =>
      refuse.client.subscribe({ onStatusChange: (s) => s === "closed" && r() }),
    );
    expect(refuse.client.stats().lastError?.code).toBe("config_mismatch");
    // Logged as JSON, the stats say what went wrong, not only its code.
    const logged = JSON.parse(JSON.stringify(refuse.client.stats())) as {
      lastError: { name: string; code: string; message: string };
    };
    expect(logged.lastError).toEqual({
      name: "StateClientError",
      code: "config_mismatch",
      message: expect.stringContaining("decay rate is 0.02/s"),
    });
  });

  test("a server whose window differs is reported and the client closes at once, whatever onConfigMismatch says", async () => {
    const { server, client } = start();
    server.headers = { [WINDOW_MS_HEADER]: "60000" };
    const errors: StateClientError[] = [];
    client.on("error", (e) => errors.push(e));
    client.connect();
    await new Promise<void>((r) =>
      client.subscribe({ onStatusChange: (s) => s === "closed" && r() }),
    );
    expect(errors.map((e) => e.code)).toEqual(["config_mismatch"]);
    expect(errors[0]?.message).toContain("seed window is 60000 ms");
    expect(errors[0]?.message).toContain("the server would refuse every seed");
    // One connection attempt, no reconnect loop.
    expect(server.streams).toHaveLength(1);
    expect(client.stats().reconnects).toBe(0);
  });

  test("decayRate, the deprecated name of decayRatePerSecond, means the same λ; both at once is refused", async () => {
    for (const options of [{ decayRatePerSecond: 0.02 }, { decayRate: 0.02 }]) {
      const { server, client } = start(options);
      server.headers = { [WINDOW_MS_HEADER]: "300000", [DECAY_RATE_HEADER]: "0.02" };
      const errors: StateClientError[] = [];
      client.on("error", (e) => errors.push(e));
      await connected(client, server);
      expect(errors).toEqual([]);
      await client.close();
    }
    expect(
      () => new StateClient({ baseUrl: "http://x:1", decayRate: 0.02, decayRatePerSecond: 0.02 }),
    ).toThrow(
      expect.objectContaining({
        code: "invalid_option",
        message:
          "decayRate: both decayRate (deprecated) and decayRatePerSecond are given: keep only decayRatePerSecond",
      }),
    );
  });

  test("close() sends what is pending, ends the stream, is idempotent and leaves no timer", async () => {
    const { server, time, client } = start();
    await connected(client, server);
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    await Promise.all([client.close(), client.close()]);
    expect(server.deltaUpdates()).toHaveLength(1);
    expect(server.streams[0]?.ended).toBe(true);
    expect(client.status).toBe("closed");
    expect(time.activeTimers).toBe(0);
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    expect(client.stats().deltasDropped.closed).toBe(1);
  });
});

describe("options", () => {
  test.each([
    [{ baseUrl: "localhost:50051" }, "baseUrl"],
    [{ baseUrl: "http://x:1", flushIntervalMs: 0 }, "flushIntervalMs"],
    [{ baseUrl: "http://x:1", decayRatePerSecond: -1 }, "decayRatePerSecond"],
    [{ baseUrl: "http://x:1", decayRate: -1 }, "decayRate"],
    [{ baseUrl: "http://x:1", decayRate: 0.01, decayRatePerSecond: 0.01 }, "decayRate"],
    [{ baseUrl: "http://x:1", maxBackoffMs: 1, initialBackoffMs: 10 }, "maxBackoffMs"],
    [{ baseUrl: "http://x:1", onConfigMismatch: "ignore" as "warn" }, "onConfigMismatch"],
    [{ baseUrl: "http://x:1", tls: { ca: "pem" } }, "tls"],
    [{ baseUrl: "http://x:1", authToken: "has space" }, "authToken"],
    [{ baseUrl: "http://x:1", maxSendAttempts: 0 }, "maxSendAttempts"],
  ])("%o is refused, naming %s", (options, field) => {
    expect(() => new StateClient(options)).toThrow(
      expect.objectContaining({
        code: "invalid_option",
        message: expect.stringMatching(new RegExp(`^${field}: `)),
      }),
    );
  });
});
