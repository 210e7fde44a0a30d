// Several RedisStores on one Redis, as several server replicas use them:
// every replica learns every change, in order; lost messages, dropped
// subscriptions and a restarted Redis are recovered from.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import { type BucketState, StoreError } from "@fair/state-store";
import { Conditions } from "@fair/testing";
import {
  deleteKeys,
  type PrivateRedis,
  startPrivateRedis,
  uniqueKeyPrefix,
} from "@fair/testing/redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";
import { KeyLayout, type SlotGroup } from "./keys.js";

const url = inject("redisUrl");
const seed = 1_764_136_800_000n;
const t0 = Number(seed) + 1_000;

function update(deltas: [number, number, number][]): DeltaUpdate {
  return create(DeltaUpdateSchema, {
    seed,
    deltas: deltas.map(([row, col, deltaProb]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      deltaProb,
      lastUpdateTimeMs: BigInt(t0),
    })),
  });
}

/** A replica's store and what its listeners were handed, as a client would hold it. */
interface Replica {
  readonly store: RedisStore;
  readonly deliveries: BucketState[][];
  /** Latest value per "row:col". */
  readonly view: Map<string, number>;
  /** Resolves once `condition` holds, checked on every delivery and readiness change. */
  until(condition: () => boolean): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function replicas(count: number, options: Partial<RedisStoreOptions> = {}) {
  const keyPrefix = uniqueKeyPrefix("replication");
  // A private Redis goes with its process; the shared one is cleaned by prefix.
  if (options.url === undefined)
    cleanups.push(() => deleteKeys(url, keyPrefix).then(() => undefined));
  const out: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const store = new RedisStore({ url, keyPrefix, now: () => t0, ...options });
    const deliveries: BucketState[][] = [];
    const view = new Map<string, number>();
    const conditions = new Conditions();
    const check = () => conditions.notify();
    store.onChange((_ns, _seed, buckets) => {
      deliveries.push(buckets);
      for (const b of buckets) view.set(`${b.rowId}:${b.colId}`, b.prob);
      check();
    });
    store.onReadyChange(check);
    store.start();
    cleanups.push(() => store.stop());
    await store.whenReady();
    out.push({
      store,
      deliveries,
      view,
      until: (condition) => conditions.until(condition),
    });
  }
  return out;
}

/** The store's state as a view: non-zero buckets by "row:col". */
async function stored(store: RedisStore): Promise<Map<string, number>> {
  return new Map((await store.getSeed(seed)).map((b) => [`${b.rowId}:${b.colId}`, b.prob]));
}

function nonZero(view: Map<string, number>): Map<string, number> {
  return new Map([...view].filter(([, prob]) => prob > 0));
}

describe.skipIf(url === "")("replication between RedisStores", () => {
  test("a change applied on one replica reaches every replica's listeners, its own once", async () => {
    const [a, b] = (await replicas(2)) as [Replica, Replica];
    await a.store.applyUpdate(update([[1, 2, 0.25]]));
    await b.until(() => b.view.get("1:2") === 0.25);
    await a.store.namespace("other").applyDelta(seed, 0, 0, 0.5, t0);
    await b.until(() => b.view.get("0:0") === 0.5);
    expect(a.deliveries.flat().filter((x) => x.colId === 2)).toHaveLength(1);
    expect(a.view).toEqual(b.view);
  });

  test("concurrent applies on three replicas leave every replica's view equal to the stored state", async () => {
    const all = await replicas(3);
    let random = 42;
    const next = () => {
      random = (random * 1_103_515_245 + 12_345) % 2 ** 31;
      return random / 2 ** 31;
    };
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const replica = all[i % 3] as Replica;
      const deltas: [number, number, number][] = [];
      for (let j = 0; j < 3; j++) {
        deltas.push([Math.floor(next() * 3), Math.floor(next() * 8), next() * 0.4 - 0.15]);
      }
      writes.push(replica.store.applyUpdate(update(deltas)));
    }
    await Promise.all(writes);
    const truth = await stored(all[0]?.store as RedisStore);
    for (const replica of all) {
      await replica.until(() => equal(nonZero(replica.view), truth));
    }
    expect(all.map((r) => r.store.redisStats().gaps)).toEqual([0, 0, 0]);
  });

  test("a lost message shows as a sequence jump: the group is re-read, tombstones included", async () => {
    const [a, b] = (await replicas(2)) as [Replica, Replica];
    await a.store.applyUpdate(update([[0, 1, 0.5]]));
    await b.until(() => b.view.get("0:1") === 0.5);
    // What a lost message would have carried: bucket 0:1 fell to 0 and 0:3
    // rose, and the group's sequence moved on; nobody heard of it.
    const raw = new Redis(url);
    const keys = new KeyLayout(a.store.options.keyPrefix, 1);
    const group = keys.groups[0] as SlotGroup;
    const value = (prob: number) => {
      const out = Buffer.alloc(16);
      out.writeDoubleLE(prob, 0);
      out.writeDoubleLE(t0, 8);
      return out;
    };
    await raw.hset(keys.rowPart(group, `|${seed}|0`), "1", value(0), "3", value(0.75));
    await raw.hincrby(group.counts, `|${seed}`, 0);
    await raw.incr(group.sequence);
    raw.disconnect();

    await a.store.applyUpdate(update([[0, 2, 0.125]]));
    await b.until(() => b.view.get("0:3") === 0.75);
    expect(b.view).toEqual(
      new Map([
        ["0:1", 0],
        ["0:2", 0.125],
        ["0:3", 0.75],
      ]),
    );
    expect(b.store.redisStats().gaps).toBe(1);
    // At least that block; the start-up resync may have read it back too.
    expect(b.store.redisStats().rowsReread).toBeGreaterThanOrEqual(1);
  });

  test("a replica whose subscription is cut resubscribes, resyncs, and misses nothing", async () => {
    const [a, b] = (await replicas(2)) as [Replica, Replica];
    await a.store.applyUpdate(update([[0, 1, 0.5]]));
    await b.until(() => b.view.get("0:1") === 0.5);
    const raw = new Redis(url);
    const clients = (await raw.client("LIST")) as string;
    const id = new RegExp(`id=(\\d+) .*name=fair-state:${b.store.replicaId}:sub `).exec(
      clients,
    )?.[1];
    expect(id).toBeDefined();
    await raw.client("KILL", "ID", id as string);
    raw.disconnect();
    // Written while b's subscription is down (its reconnect waits ≥ 50 ms).
    await a.store.applyUpdate(update([[0, 4, 0.25]]));
    await b.until(() => b.view.get("0:4") === 0.25 && b.store.ready);
    expect(b.store.redisStats()).toMatchObject({ disconnects: 1 });
    expect(b.store.redisStats().resyncs).toBeGreaterThanOrEqual(2);
  });
});

describe.skipIf(url === "")("a Redis outage", () => {
  let redis: PrivateRedis;
  afterEach(async () => {
    await redis?.stop();
  });

  test("operations fail as unavailable and readiness drops; when Redis is back both recover", async () => {
    redis = await startPrivateRedis();
    const [a, b] = (await replicas(2, { url: redis.url })) as [Replica, Replica];
    await a.store.applyUpdate(update([[0, 1, 0.5]]));
    await b.until(() => b.view.get("0:1") === 0.5);

    await redis.stop();
    await Promise.all([a.until(() => !a.store.ready), b.until(() => !b.store.ready)]);
    const error = await a.store.applyUpdate(update([[0, 2, 0.5]])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: "unavailable", field: "redis" });
    await expect(b.store.getSeed(seed)).rejects.toMatchObject({ code: "unavailable" });

    await redis.start();
    await Promise.all([a.store.whenReady(), b.store.whenReady()]);
    // The restarted Redis kept nothing (no persistence): versions start again.
    await a.store.applyUpdate(update([[0, 3, 0.125]]));
    await b.until(() => b.view.get("0:3") === 0.125);
    expect(await b.store.getSeed(seed)).toEqual([
      { rowId: 0, colId: 3, prob: 0.125, lastUpdateTimeMs: t0 },
    ]);
    expect(b.store.redisStats()).toMatchObject({ redisRestarts: 1 });
    expect(a.store.redisStats().errors.apply).toBe(1);
  });
});

function equal(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}
