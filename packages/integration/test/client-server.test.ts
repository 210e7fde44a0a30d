// @fair/state-client against a real @fair/state-server on loopback: the
// seed plan's Task 6.2 scenarios.
import { connect, createServer, type Socket } from "node:net";
import type { BucketDelta, BucketValue } from "@fair/state-client";
import { afterEach, describe, expect, test } from "vitest";
import { Fleet, type Instance, seed0, seed1, t0 } from "./fleet.js";

let fleet: Fleet;
afterEach(async () => {
  await fleet?.close();
});

const failure = (colId: number, ms = 0, rowId = 0): BucketDelta => ({
  rowId,
  colId,
  deltaProb: 0.04,
  lastUpdateTimeMs: t0 + ms,
});

/** A view without default-valued buckets (prob 0 means the same as absent). */
const live = (buckets: BucketValue[]) => buckets.filter((b) => b.prob !== 0);

const connected = (instances: Instance[]) => () =>
  instances.every((i) => i.client.status === "connected");

describe("a fleet of clients and one server", () => {
  test("eventual consistency: deltas from three clients converge in all three and in the server", async () => {
    fleet = new Fleet();
    await fleet.startServer();
    const fleetOf3 = [fleet.join(), fleet.join(), fleet.join()];
    await fleet.until(connected(fleetOf3));

    fleetOf3.forEach((instance, i) => {
      for (let k = 0; k < 20; k++) {
        instance.client.sendDeltaUpdate(seed0, [
          failure(k % 7, 10 * k, i),
          failure(100 + i, 10 * k),
        ]);
      }
    });
    fleet.tick(100);
    await fleet.until(
      () =>
        fleet.serverState(seed0).length === 3 * 7 + 3 &&
        fleetOf3.every(
          (i) =>
            JSON.stringify(live(i.buckets(seed0))) === JSON.stringify(fleet.serverState(seed0)),
        ),
    );
    // Bucket (0, 100) got 20 failures from client 0 at t0 … t0+190 ms: the server decayed and summed them.
    const expected = Array.from(
      { length: 20 },
      (_, k) => 0.04 * Math.exp((-0.01 * (190 - 10 * k)) / 1000),
    ).reduce((a, b) => a + b);
    expect(fleet.serverState(seed0).find((b) => b.colId === 100)?.prob).toBeCloseTo(expected, 12);
    for (const instance of fleetOf3) {
      expect(instance.client.stats()).toMatchObject({
        deltasQueued: 40,
        deltasDropped: { invalid: 0, overflow: 0, retries_exhausted: 0, closed: 0 },
      });
    }
  });

  test("cold start: a new client's requestFullState returns the current state", async () => {
    fleet = new Fleet();
    await fleet.startServer();
    const writer = fleet.join();
    writer.client.sendDeltaUpdate(seed0, [failure(1), failure(2), failure(3)]);
    fleet.tick(50);
    await fleet.until(() => fleet.serverState(seed0).length === 3);

    const newcomer = fleet.join();
    const state = await newcomer.client.requestFullState(seed0);
    expect(sortedCopy(state)).toEqual(fleet.serverState(seed0));
  });

  test("seed rotation: a client asks for the next window's state and then receives broadcasts for both seeds", async () => {
    fleet = new Fleet();
    await fleet.startServer();
    const [a, b] = [fleet.join(), fleet.join()];
    a.client.sendDeltaUpdate(seed1, [failure(9)]); // writers warm the next window ahead of time
    fleet.tick(50);
    await fleet.until(() => fleet.serverState(seed1).length === 1);

    expect(await b.client.requestFullState(seed1)).toEqual(fleet.serverState(seed1));
    a.client.sendDeltaUpdate(seed0, [failure(1)]);
    a.client.sendDeltaUpdate(seed1, [failure(2)]);
    fleet.tick(50);
    await fleet.until(() => b.buckets(seed0).length === 1 && b.buckets(seed1).length === 2);
    expect(b.buckets(seed1)).toEqual(fleet.serverState(seed1));
    expect(b.buckets(seed0)).toEqual(fleet.serverState(seed0));
  });
});

describe("when the server goes away", () => {
  test("clients reconnect by themselves when it comes back on the same port, resync, and deliver what waited", async () => {
    fleet = new Fleet();
    const first = await fleet.startServer();
    const clients = [fleet.join({ maxBackoffMs: 400 }), fleet.join({ maxBackoffMs: 400 })];
    await fleet.until(connected(clients));
    await Promise.all(clients.map((c) => c.client.requestFullState(seed0)));

    await fleet.stopServer();
    await fleet.until(() => clients.every((c) => c.client.status === "disconnected"));
    clients[0]?.client.sendDeltaUpdate(seed0, [failure(5), failure(5, 100)]);
    fleet.tick(50); // the flush comes due while disconnected: the adjustment waits
    expect(clients[0]?.client.stats().pendingBuckets).toBe(1);

    await fleet.startServer(first.grpcAddress);
    await reconnectAll(clients, 400);
    // The waiting adjustment reached the new server, and every client resynced to it.
    await fleet.until(() => fleet.serverState(seed0).length === 1);
    const expected = 0.04 * Math.exp(-0.01 * 0.1) + 0.04;
    expect(fleet.serverState(seed0)[0]?.prob).toBeCloseTo(expected, 12);
    // A new server is a new epoch: each client resynced after it (and would
    // have offered, had it a listener holding state), then sent what waited.
    await fleet.until(() =>
      clients.every(
        (c) => JSON.stringify(c.buckets(seed0)) === JSON.stringify(fleet.serverState(seed0)),
      ),
    );
    for (const { client } of clients) {
      expect(client.stats()).toMatchObject({ epochChanges: 1, deltasDropped: { too_old: 0 } });
      expect(client.stats().reconnects).toBeGreaterThan(0);
    }
  });

  test("a half-open connection (the server silent, no FIN, no RST) is noticed by keepalive PINGs", async () => {
    fleet = new Fleet();
    const server = await fleet.startServer();
    const relay = await relayTo(server.grpcAddress);
    try {
      // PINGs run on real timers inside the HTTP/2 session: short ones keep the test quick.
      const instance = fleet.join({
        baseUrl: `http://${relay.address}`,
        keepaliveIntervalMs: 100,
        keepaliveTimeoutMs: 100,
      });
      await fleet.until(connected([instance]));
      relay.goSilent();
      await fleet.until(() => instance.client.status === "disconnected");
      expect(instance.client.stats().lastError?.code).toBe("stream_error");
    } finally {
      relay.close();
    }
  });

  test("a server never reachable: deltas are accepted within the bound and held through every attempt, the client says so, and nothing leaks", async () => {
    fleet = new Fleet();
    const port = await unusedPort();
    const lonely = fleet.join({
      baseUrl: `http://127.0.0.1:${port}`,
      maxPendingBuckets: 100,
      initialBackoffMs: 100,
      maxBackoffMs: 400,
    });
    for (let k = 0; k < 1_000; k++) lonely.client.sendDeltaUpdate(seed0, [failure(k)]);
    expect(lonely.client.stats()).toMatchObject({
      pendingBuckets: 100,
      deltasDropped: { overflow: 900 },
    });

    for (let attempt = 1; attempt <= 5; attempt++) {
      await fleet.until(() => lonely.client.status === "disconnected");
      expect(fleet.time.activeTimers).toBeLessThanOrEqual(2); // a backoff and at most one flush
      fleet.tick(400);
      await fleet.until(
        () =>
          lonely.client.stats().reconnects >= attempt && lonely.client.status === "disconnected",
      );
    }
    // An outage of any length loses nothing held: only the bound drops, and counts.
    expect(lonely.client.stats()).toMatchObject({
      pendingBuckets: 100,
      deltasDropped: { overflow: 900, retries_exhausted: 0 },
      lastError: expect.objectContaining({ code: "stream_error" }),
    });
    await lonely.client.close();
    expect(fleet.time.activeTimers).toBe(0);
  });
});

/**
 * Moves fake time past every client's backoff until all are connected. Each
 * round waits until every client still out has settled (connected, or
 * failed again and is backing off), so no round races a connection attempt
 * — including one still in flight when the round begins, whose failure
 * (ECONNREFUSED from before the server came back) may arrive only now.
 */
async function reconnectAll(clients: Instance[], maxBackoffMs: number): Promise<void> {
  for (let round = 0; round < 10 && !connected(clients)(); round++) {
    const settled = clients
      .filter((c) => c.client.status !== "connected")
      .map(
        (c) =>
          new Promise<void>((resolve) => {
            const stop = c.client.subscribe({
              onStatusChange: (status) => {
                if (status === "connecting") return;
                stop();
                resolve();
              },
            });
          }),
      );
    fleet.tick(maxBackoffMs);
    await Promise.all(settled);
  }
  expect(connected(clients)()).toBe(true);
}

/** A TCP relay that can go silent without closing anything: a half-open connection. */
async function relayTo(target: string) {
  const [host = "", port = ""] = target.split(":");
  const sockets = new Set<Socket>();
  let silent = false;
  const relay = createServer((inbound) => {
    const outbound = connect(Number(port), host);
    sockets.add(inbound).add(outbound);
    inbound.on("data", (chunk) => silent || outbound.write(chunk));
    outbound.on("data", (chunk) => silent || inbound.write(chunk));
    for (const socket of [inbound, outbound])
      socket.on("error", () => {}).on("close", () => sockets.delete(socket));
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => relay.once("listening", resolve));
  return {
    address: `127.0.0.1:${(relay.address() as { port: number }).port}`,
    goSilent: () => {
      silent = true;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      relay.close();
    },
  };
}

function sortedCopy(buckets: readonly BucketValue[]): BucketValue[] {
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

async function unusedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
