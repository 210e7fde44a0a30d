// Failures of Redis itself under load, on clusters and a Sentinel setup of
// the test's own (real redis-server processes, @fair/testing/redis-cluster):
// a primary killed (its replica promoted), slots migrated, a Sentinel
// failover. Two stores play two server replicas: each writes, each relays
// the other's changes to its own change feed.
//
// Every update writes a bucket of its own (row = replica, col = sequence)
// with an amount of its own, so a bucket's value says whether its update
// was applied, and how many times. "Acknowledged" means applyUpdate
// resolved. Updates refused while Redis fails over (unavailable) are sent
// again, as a client does with what it holds.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import { type BucketState, StoreError } from "@fair/state-store";
import { Conditions } from "@fair/testing";
import { uniqueKeyPrefix } from "@fair/testing/redis";
import {
  type PrivateCluster,
  type PrivateSentinel,
  startPrivateCluster,
  startPrivateSentinel,
} from "@fair/testing/redis-cluster";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";
import { KeyLayout } from "./keys.js";

// The cluster tests need redis-server; the shared cluster's presence says it is here.
const run = inject("redisClusterUrl") !== "";
const windowMs = 300_000;
const t0 = Date.now();
const seed = BigInt(Math.floor(t0 / windowMs) * windowMs);

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Replica {
  readonly store: RedisStore;
  /** The latest value the change feed handed on, per `row:col`. */
  readonly view: Map<string, number>;
  until(condition: () => boolean): Promise<void>;
}

function replica(options: Partial<RedisStoreOptions>): Replica {
  const store = new RedisStore({ windowMs, commandTimeoutMs: 1_000, ...options });
  const view = new Map<string, number>();
  const conditions = new Conditions();
  store.onChange((_namespace, _seed, buckets) => {
    for (const b of buckets) view.set(`${b.rowId}:${b.colId}`, b.prob);
    conditions.notify();
  });
  store.onReadyChange(() => conditions.notify());
  store.start();
  cleanups.push(() => store.stop());
  return { store, view, until: (condition) => conditions.until(condition) };
}

const amount = (row: number, col: number) => 0.001 * (1 + ((row * 37 + col) % 97));

function update(row: number, col: number): DeltaUpdate {
  return create(DeltaUpdateSchema, {
    seed,
    deltas: [
      {
        rowId: BigInt(row),
        colId: BigInt(col),
        deltaProb: amount(row, col),
        lastUpdateTimeMs: BigInt(t0),
      },
    ],
  });
}

/** When each update of one row was acknowledged, and after how many tries. */
type Acks = Map<number, { readonly at: number; readonly tries: number }>;

/**
 * Sends `row`'s updates from `from` on through `store` while `more()` says
 * so, each until it is acknowledged (a refusal other than `unavailable`
 * fails the test), into `acks`. Resolves with the next column.
 */
async function send(
  store: RedisStore,
  row: number,
  from: number,
  more: (col: number) => boolean,
  acks: Acks,
): Promise<number> {
  let col = from;
  for (; more(col); col++) {
    for (let tries = 1; ; tries++) {
      try {
        await store.applyUpdate(update(row, col));
        acks.set(col, { at: performance.now(), tries });
        break;
      } catch (error) {
        if (!(error instanceof StoreError) || error.code !== "unavailable" || tries >= 1_000) {
          throw error;
        }
        // Redis is failing over: wait for the store to be ready, as a client waits to reconnect.
        await store.whenReady();
      }
    }
  }
  return col;
}

/** Updates acknowledged only after they were sent again. */
const retried = (acks: readonly Acks[]) =>
  acks.reduce(
    (sum, rowAcks) => sum + [...rowAcks.values()].filter((ack) => ack.tries > 1).length,
    0,
  );

/** Up to column `to`, exclusive. */
const upTo = (to: number) => (col: number) => col < to;

/**
 * Checks what Redis holds against what was acknowledged: every update
 * acknowledged after `safeAfter` (the old primary's process had exited) is
 * there, applied once, or at least once when it was sent again; of those
 * acknowledged before it, the ones Redis lost (acknowledged by the old
 * primary, not yet replicated) are returned.
 */
function check(held: Map<string, number>, acks: readonly Acks[], safeAfter: number): string[] {
  const lost: string[] = [];
  acks.forEach((rowAcks, row) => {
    for (const [col, { at, tries }] of rowAcks) {
      const key = `${row}:${col}`;
      const prob = held.get(key);
      if (prob === undefined && at < safeAfter) {
        lost.push(key);
        continue;
      }
      // An ambiguous failure (the reply lost, the write made) may apply a retried update twice.
      if (tries === 1) expect(prob, key).toBe(amount(row, col));
      else expect(prob, key).toBeGreaterThanOrEqual(amount(row, col));
    }
  });
  return lost;
}

/** What Redis holds for the seed, read by a store of its own. */
async function truth(options: Partial<RedisStoreOptions>): Promise<Map<string, number>> {
  const reader = replica(options);
  await reader.store.whenReady();
  const buckets: BucketState[] = await reader.store.getSeed(seed);
  return new Map(buckets.map((b) => [`${b.rowId}:${b.colId}`, b.prob]));
}

function sameAs(view: Map<string, number>, expected: Map<string, number>): boolean {
  const held = [...view].filter(([, prob]) => prob > 0);
  return held.length === expected.size && held.every(([key, prob]) => expected.get(key) === prob);
}

/** Two stores on the same Redis, both ready: two server replicas. */
async function pair(options: Partial<RedisStoreOptions>): Promise<[Replica, Replica]> {
  const both: [Replica, Replica] = [replica(options), replica(options)];
  await Promise.all(both.map((r) => r.store.whenReady()));
  return both;
}

/**
 * Both stores write their own row: 40 updates, then updates until
 * `disrupt` (the failure, run meanwhile) resolves, then 40 more. Resolves
 * with what each acknowledged, and when `disrupt` said the failure hit.
 */
async function throughDisruption(
  [a, b]: [Replica, Replica],
  disrupt: () => Promise<number>,
): Promise<{ acks: Acks[]; hitAt: number; loadEnds: number[] }> {
  const acks: [Acks, Acks] = [new Map(), new Map()];
  const stores = [a.store, b.store];
  await Promise.all(stores.map((store, row) => send(store, row, 0, upTo(40), acks[row] as Acks)));
  let going = true;
  const load = Promise.all(
    stores.map((store, row) => send(store, row, 40, () => going, acks[row] as Acks)),
  );
  const hitAt = await disrupt();
  going = false;
  const ends = await load;
  await Promise.all(
    stores.map((store, row) => {
      const end = ends[row] as number;
      return send(store, row, end, upTo(end + 40), acks[row] as Acks);
    }),
  );
  return { acks, hitAt, loadEnds: ends };
}

/**
 * Whether writes went on across the failure: updates of the load phase
 * (from column 40 to where it ended) acknowledged both before and after it
 * hit, on either store.
 */
function acrossTheFailure(acks: readonly Acks[], hitAt: number, loadEnds: readonly number[]) {
  let before = false;
  let after = false;
  acks.forEach((rowAcks, row) => {
    for (const [col, { at }] of rowAcks) {
      if (col < 40 || col >= (loadEnds[row] as number)) continue;
      if (at < hitAt) before = true;
      else after = true;
    }
  });
  return before && after;
}

describe.skipIf(!run)("Redis failures under load", () => {
  test("a Cluster primary killed under load: its replica takes over, the stores keep serving and converge, nothing acknowledged is lost", async () => {
    const cluster: PrivateCluster = await startPrivateCluster({ nodeTimeoutMs: 2_000 });
    cleanups.push(() => cluster.stop());
    const options = {
      mode: "cluster" as const,
      url: cluster.url,
      keyPrefix: uniqueKeyPrefix("failover"),
    };
    const stores = await pair(options);
    // Under load: the primary of the first slot group dies while both write.
    const group = new KeyLayout(options.keyPrefix, 16).groups[0]?.sequence as string;
    const { acks, hitAt, loadEnds } = await throughDisruption(stores, async () => {
      await cluster.killPrimaryOf(group);
      const killedAt = performance.now();
      await cluster.waitForOk();
      return killedAt;
    });

    const held = await truth(options);
    // Replication is asynchronous: a write the old primary acknowledged in
    // the last moment before it died may not have reached its replica. That
    // window is the replication lag (well under a millisecond here); nothing
    // acknowledged after the kill may be missing.
    const lost = check(held, acks, hitAt);
    expect(lost.length, `lost before the kill: ${lost.join(", ")}`).toBeLessThanOrEqual(4);
    // The load ran across the failover. Updates to the dead shard's groups
    // waited in the Cluster client's retries (MOVED, CLUSTERDOWN) or were
    // refused and sent again.
    expect(acrossTheFailure(acks, hitAt, loadEnds)).toBe(true);
    // Both change feeds converge on what Redis holds: the shard's subscriber
    // came back and the stores re-read what its messages might have carried.
    await Promise.all(stores.map((r) => r.until(() => sameAs(r.view, held))));
  });

  test("slots migrated under load (redis-cli --cluster reshard): MOVED and ASK are followed, nothing is lost", async () => {
    const cluster: PrivateCluster = await startPrivateCluster();
    cleanups.push(() => cluster.stop());
    const options = {
      mode: "cluster" as const,
      url: cluster.url,
      keyPrefix: uniqueKeyPrefix("reshard"),
    };
    const stores = await pair(options);
    const primaries = cluster.nodes.filter((node) => node.role === "primary");
    const [from, to] = primaries as [(typeof primaries)[0], (typeof primaries)[0]];
    const { acks } = await throughDisruption(stores, async () => {
      // Half of the first primary's slots, the first slot groups' among them.
      await cluster.reshard(from.port, to.port, 2_730);
      return Number.NEGATIVE_INFINITY;
    });

    const held = await truth(options);
    // A migration loses nothing: every acknowledged update is there.
    expect(check(held, acks, Number.NEGATIVE_INFINITY)).toEqual([]);
    expect(held.size).toBe(acks.reduce((sum, rowAcks) => sum + rowAcks.size, 0));
    await Promise.all(stores.map((r) => r.until(() => sameAs(r.view, held))));
  });

  test("a Sentinel failover under load: the stores follow the new primary, keep serving and converge", async () => {
    const sentinel: PrivateSentinel = await startPrivateSentinel();
    cleanups.push(() => sentinel.stop());
    const options = {
      mode: "sentinel" as const,
      url: sentinel.sentinelUrl,
      sentinelName: sentinel.masterName,
      keyPrefix: uniqueKeyPrefix("sentinel"),
    };
    const stores = await pair(options);
    const old = await sentinel.primaryPort();
    const { acks, hitAt, loadEnds } = await throughDisruption(stores, async () => {
      await sentinel.killPrimary();
      const killedAt = performance.now();
      expect(await sentinel.waitForFailover(old)).not.toBe(old);
      return killedAt;
    });

    const held = await truth(options);
    const lost = check(held, acks, hitAt);
    expect(lost.length, `lost before the kill: ${lost.join(", ")}`).toBeLessThanOrEqual(4);
    // One server, gone: the load met it, and what it refused was sent again.
    expect(acrossTheFailure(acks, hitAt, loadEnds)).toBe(true);
    expect(retried(acks)).toBeGreaterThan(0);
    await Promise.all(stores.map((r) => r.until(() => sameAs(r.view, held))));
  });
});
