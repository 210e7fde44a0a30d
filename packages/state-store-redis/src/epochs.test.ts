// The state epoch on Redis (the `epochs` capability): one epoch key per
// prefix that every replica agrees on; a new epoch when the data is lost —
// the prefix's keys deleted (what a FLUSHALL does to them, without touching
// the shared server's other keys), a Redis restarted empty — noticed by a
// script, a reconnect or another replica's announcement; the same epoch
// when Redis keeps the data across a reconnect or a restart.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import { StateOfferSchema } from "@fair/state-proto";
import type { StoreEpoch } from "@fair/state-store";
import { Conditions } from "@fair/testing";
import {
  deleteKeys,
  freePort,
  type PrivateRedis,
  startPrivateRedis,
  uniqueKeyPrefix,
} from "@fair/testing/redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";

const url = inject("redisUrl");
const seed = 1_764_136_800_000n;
const t0 = Number(seed) + 1_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A replica's store, the epochs its listener heard and the latest value of each bucket it was handed. */
interface Replica {
  readonly store: RedisStore;
  readonly epochs: StoreEpoch[];
  readonly view: Map<string, number>;
  /** Resolves once `condition` holds, checked on every change, readiness change and epoch. */
  until(condition: () => boolean): Promise<void>;
}

function replica(options: Partial<RedisStoreOptions>): Replica {
  const store = new RedisStore({ url, now: () => t0, ...options });
  cleanups.push(() => store.stop());
  const epochs: StoreEpoch[] = [];
  const view = new Map<string, number>();
  const conditions = new Conditions();
  const check = () => conditions.notify();
  store.epochs.onEpochChange((epoch) => {
    epochs.push(epoch);
    check();
  });
  store.onChange((_ns, _seed, buckets) => {
    for (const b of buckets) view.set(`${b.rowId}:${b.colId}`, b.prob);
    check();
  });
  store.onReadyChange(check);
  return {
    store,
    epochs,
    view,
    until: (condition) => conditions.until(condition),
  };
}

/** `count` replicas on one fresh prefix of the shared Redis (or `options.url`), started together and ready. */
async function replicas(count: number, options: Partial<RedisStoreOptions> = {}) {
  const keyPrefix = uniqueKeyPrefix("epochs");
  // A private Redis goes with its process; the shared one is cleaned by prefix.
  if (options.url === undefined) cleanups.push(() => deleteKeys(url, keyPrefix));
  const all = Array.from({ length: count }, () => replica({ keyPrefix, ...options }));
  for (const { store } of all) store.start();
  await Promise.all(all.map(({ store }) => store.whenReady()));
  const redis = new Redis(options.url ?? url);
  redis.on("error", () => {});
  cleanups.push(async () => redis.disconnect());
  return { all, keyPrefix, redis, epochKey: `${keyPrefix}{epoch}` };
}

/** Ends a store's connections from the server side (CLIENT KILL): `sub`, its subscriber; `command`, the other. */
async function kill(redis: Redis, store: RedisStore, which: ("command" | "sub")[]) {
  const clients = (await redis.client("LIST")) as string;
  for (const connection of which) {
    const name = `fair-state:${store.replicaId}${connection === "sub" ? ":sub" : ""}`;
    const id = new RegExp(`id=(\\d+) .*name=${name} `).exec(clients)?.[1];
    expect(id).toBeDefined();
    await redis.client("KILL", "ID", id as string);
  }
}

function delta(row: number, col: number, deltaProb: number) {
  return {
    seed,
    deltas: [{ rowId: BigInt(row), colId: BigInt(col), deltaProb, lastUpdateTimeMs: BigInt(t0) }],
  };
}

describe.skipIf(url === "")("epochs on Redis", () => {
  test("replicas started together agree on one epoch, kept in the epoch key", async () => {
    const keyPrefix = uniqueKeyPrefix("epochs");
    cleanups.push(() => deleteKeys(url, keyPrefix));
    const all = [1, 2, 3].map(() => replica({ keyPrefix }));
    expect(all[0]?.store.epochs.current).toBeUndefined();
    for (const { store } of all) store.start();
    await Promise.all(all.map(({ store }) => store.whenReady()));
    const [a] = all as [Replica];
    const epoch = a.store.epochs.current;
    expect(epoch).toEqual({ id: expect.any(String), startedAtMs: t0 });
    for (const { store, epochs } of all) {
      expect(store.epochs.current).toEqual(epoch);
      // Learned once, and heard once.
      expect(epochs).toEqual([epoch]);
      expect(store.redisStats().epochChanges).toBe(0);
    }
    const redis = new Redis(url);
    cleanups.push(() => redis.quit());
    expect(JSON.parse((await redis.get(`${keyPrefix}{epoch}`)) as string)).toEqual(epoch);
    expect(await redis.pttl(`${keyPrefix}{epoch}`)).toBe(-1);
  });

  test("data deleted under the replicas: the next apply begins a new epoch, every replica follows and relays afresh", async () => {
    const { all, keyPrefix, redis, epochKey } = await replicas(2);
    const [a, b] = all as [Replica, Replica];
    const first = a.store.epochs.current as StoreEpoch;
    for (const col of [1, 2, 3]) await a.store.applyUpdate(delta(0, col, 0.25));
    await b.until(() => b.view.get("0:3") === 0.25);

    await deleteKeys(url, keyPrefix);
    // Row 0's version starts again from 1 in the new epoch, below what b last saw.
    const { status, buckets } = await a.store.applyUpdate(delta(0, 5, 0.5));
    expect(status).toBe("applied");
    expect(buckets).toEqual([{ rowId: 0, colId: 5, prob: 0.5, lastUpdateTimeMs: t0 }]);
    const second = a.store.epochs.current as StoreEpoch;
    expect(second.id).not.toBe(first.id);
    await b.until(() => b.store.epochs.current?.id === second.id && b.view.get("0:5") === 0.5);
    expect(a.epochs).toEqual([first, second]);
    expect(b.epochs).toEqual([first, second]);
    expect(JSON.parse((await redis.get(epochKey)) as string)).toEqual(second);
    expect(await b.store.getSeed(seed)).toEqual(buckets);
    expect(a.store.redisStats().epochChanges).toBe(1);
    expect(b.store.redisStats().epochChanges).toBe(1);
  });

  test("an epoch key found missing on reconnect is renewed; the other replica follows the announcement", async () => {
    const { all, keyPrefix, redis } = await replicas(2);
    const [a, b] = all as [Replica, Replica];
    const first = a.store.epochs.current as StoreEpoch;
    await deleteKeys(url, keyPrefix);
    await kill(redis, b.store, ["sub"]);
    await b.until(() => b.store.ready && b.store.epochs.current?.id !== first.id);
    const second = b.store.epochs.current as StoreEpoch;
    await a.until(() => a.store.epochs.current?.id === second.id);
    expect(a.epochs).toEqual([first, second]);
    expect(b.epochs).toEqual([first, second]);
  });

  test("a reconnect with the data kept keeps the epoch", async () => {
    const { all, redis } = await replicas(2);
    const [a, b] = all as [Replica, Replica];
    const epoch = a.store.epochs.current;
    await a.store.applyUpdate(delta(0, 1, 0.5));
    await kill(redis, b.store, ["command", "sub"]);
    await b.until(() => b.store.redisStats().disconnects === 1 && b.store.ready);
    expect(b.store.epochs.current).toEqual(epoch);
    expect(b.epochs).toEqual([epoch]);
    expect(b.store.redisStats()).toMatchObject({ epochChanges: 0, redisRestarts: 0 });
    // Still one view: b applies in the same epoch, a hears it.
    await b.store.applyUpdate(delta(0, 2, 0.25));
    await a.until(() => a.view.get("0:2") === 0.25);
    expect(a.epochs).toEqual([epoch]);
  });

  test("a script that finds another epoch in the key adopts it, and the update applies in it", async () => {
    const { all, redis, epochKey } = await replicas(1);
    const [a] = all as [Replica];
    const first = a.store.epochs.current as StoreEpoch;
    // As another replica would leave it, its announcement lost.
    const other = { id: "another-epoch", startedAtMs: t0 - 5 };
    await redis.set(epochKey, JSON.stringify(other));
    expect((await a.store.applyUpdate(delta(0, 1, 0.5))).status).toBe("applied");
    expect(a.store.epochs.current).toEqual(other);
    expect(a.epochs).toEqual([first, other]);
    expect(await a.store.getSeed(seed)).toHaveLength(1);
  });

  test("learning begins again with a new epoch", async () => {
    const clock = { nowMs: t0 };
    const { all, keyPrefix } = await replicas(1, {
      now: () => clock.nowMs,
      learningPeriodMs: 1_000,
    });
    const [a] = all as [Replica];
    const view = create(StateOfferSchema, {
      seed,
      buckets: [{ rowId: 0n, colId: 0n, prob: 0.5, lastUpdateTimeMs: BigInt(t0) }],
    });
    clock.nowMs = t0 + 5_000;
    expect((await a.store.applyOffer(view)).status).toBe("learning_over");
    await deleteKeys(url, keyPrefix);
    await a.store.applyUpdate(delta(1, 1, 0.25));
    expect(a.store.epochs.current?.startedAtMs).toBe(t0 + 5_000);
    expect((await a.store.applyOffer(view)).status).toBe("applied");
    expect((await a.store.stats()).offers).toMatchObject({ applied: 1, learning_over: 1 });
  });

  test("eviction never deletes the epoch key", async () => {
    const { all, redis, epochKey } = await replicas(1);
    const [a] = all as [Replica];
    const epoch = await redis.get(epochKey);
    await a.store.applyUpdate(delta(0, 1, 0.5));
    expect(await a.store.evictBefore(seed + 10n * 300_000n)).toEqual({ seeds: 1, buckets: 1 });
    expect(await redis.get(epochKey)).toBe(epoch);
    expect((await a.store.applyUpdate(delta(0, 1, 0.5))).status).toBe("too_old");
    expect(a.epochs).toHaveLength(1);
  });

  test("a key that holds no epoch keeps the store from serving, and says why", async () => {
    const keyPrefix = uniqueKeyPrefix("epochs");
    cleanups.push(() => deleteKeys(url, keyPrefix));
    const redis = new Redis(url);
    cleanups.push(() => redis.quit());
    await redis.set(`${keyPrefix}{epoch}`, "not json");
    const a = replica({ keyPrefix });
    // Every subscription attempt fails on it; the reason shows once the command connection is up too.
    const refused = new Promise<void>((resolve) => {
      a.store.onOperation((operation, _ms, ok) => {
        if (operation === "subscribe" && !ok && /not an epoch/.test(a.store.notReadyReason ?? "")) {
          resolve();
        }
      });
    });
    a.store.start();
    await refused;
    expect(a.store.ready).toBe(false);
    expect(a.store.notReadyReason).toBe(
      `the epoch key ${keyPrefix}{epoch} holds "not json", not an epoch`,
    );
    await redis.del(`${keyPrefix}{epoch}`);
    await a.store.whenReady();
    expect(a.store.epochs.current).toBeDefined();
  });

  test("an epoch listener stops hearing once it unsubscribes", async () => {
    const { all, keyPrefix } = await replicas(1);
    const [a] = all as [Replica];
    const heard: StoreEpoch[] = [];
    const stop = a.store.epochs.onEpochChange((epoch) => heard.push(epoch));
    await deleteKeys(url, keyPrefix);
    await a.store.applyUpdate(delta(0, 0, 0.5));
    expect(heard).toHaveLength(1);
    stop();
    await deleteKeys(url, keyPrefix);
    await a.store.applyUpdate(delta(0, 0, 0.5));
    expect(heard).toHaveLength(1);
    expect(a.epochs).toHaveLength(3);
  });
});

describe.skipIf(url === "")("epochs across Redis restarts", () => {
  let redis: PrivateRedis | undefined;
  afterEach(async () => {
    await redis?.stop();
    redis = undefined;
  });

  test("a Redis restarted empty (another run id) begins a new epoch", async () => {
    redis = await startPrivateRedis();
    const { all } = await replicas(2, { url: redis.url });
    const [a, b] = all as [Replica, Replica];
    const first = a.store.epochs.current as StoreEpoch;
    await redis.stop();
    await redis.start();
    await Promise.all(
      all.map((r) => r.until(() => r.store.ready && r.store.epochs.current?.id !== first.id)),
    );
    expect(a.store.epochs.current).toEqual(b.store.epochs.current);
    expect(a.epochs).toEqual([first, a.store.epochs.current]);
    expect(b.store.redisStats()).toMatchObject({ redisRestarts: 1, epochChanges: 1 });
  });

  test("a Redis restarted with its data (another run id, same keys) keeps the epoch", async () => {
    const persistent = await startPersistentRedis();
    cleanups.push(() => persistent.remove());
    const { all } = await replicas(2, { url: persistent.url });
    const [a, b] = all as [Replica, Replica];
    const epoch = a.store.epochs.current;
    await a.store.applyUpdate(delta(0, 1, 0.5));
    await b.until(() => b.view.get("0:1") === 0.5);
    await persistent.restart();
    await Promise.all(
      all.map((r) => r.until(() => r.store.redisStats().redisRestarts === 1 && r.store.ready)),
    );
    for (const r of all) {
      expect(r.store.epochs.current).toEqual(epoch);
      expect(r.epochs).toEqual([epoch]);
      expect(r.store.redisStats().epochChanges).toBe(0);
    }
    expect(await b.store.getSeed(seed)).toEqual([
      { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 },
    ]);
  });
});

/**
 * A redis-server of the test's own that keeps its data across restarts
 * (an append-only file, synced on every write): `restart()` kills it
 * (SIGKILL, as abrupt as a crash) and starts it again on the same port and
 * directory, with a new run id and the same keys.
 */
async function startPersistentRedis() {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "fair-epoch-redis-"));
  let child: ChildProcess | undefined;
  const start = async () => {
    const server = spawn(
      "redis-server",
      [
        ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""],
        ...["--appendonly", "yes", "--appendfsync", "always"],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = server;
    server.stderr?.resume();
    const lines = createInterface({ input: server.stdout as NodeJS.ReadableStream });
    for await (const line of lines) if (line.includes("Ready to accept connections")) break;
    server.stdout?.resume();
  };
  const stop = async () => {
    const server = child;
    child = undefined;
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, "exit");
    server.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await stop();
      await start();
    },
    async remove() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
