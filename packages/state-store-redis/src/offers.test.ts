// Learning mode on Redis (applyOffer): the offer script's max-merge, the
// learning period on the injected clock, and what every store refuses the
// same way (the shared conformance suite checks the semantics at length);
// here also what is Redis's own: the limits over what every replica wrote,
// raised buckets carried to the other replicas' change feeds, and no offer
// before the store knows its epoch.
import { create } from "@bufbuild/protobuf";
import { type StateOffer, StateOfferSchema } from "@fair/state-proto";
import { type BucketState, StoreError } from "@fair/state-store";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, test } from "vitest";
import { RedisStore, type RedisStoreOptions } from "./index.js";
import { KeyLayout, type SlotGroup } from "./keys.js";
import { type ChangeMessage, parseMessage } from "./message.js";

const url = inject("redisUrl");
const windowMs = 300_000;
const seed = 1_764_136_800_000n;
const t0 = Number(seed) + 1_000;
const lambda = 0.01;

/** `[row, col, prob, lastUpdateTimeMs]` */
type Offered = [number, number, number, number];

function offer(buckets: Offered[], at = seed): StateOffer {
  return create(StateOfferSchema, {
    seed: at,
    buckets: buckets.map(([row, col, prob, ts]) => ({
      rowId: BigInt(row),
      colId: BigInt(col),
      prob,
      lastUpdateTimeMs: BigInt(ts),
    })),
  });
}

/** `p` as of `t`, decayed to `at`. */
const decayed = (p: number, t: number, at: number) => p * Math.exp((-lambda * (at - t)) / 1000);

/** Each bucket's value decayed to `at`, by "row:col": states that differ only in their stamps compare equal. */
function valuesAt(buckets: readonly BucketState[], at: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of sorted(buckets))
    out[`${b.rowId}:${b.colId}`] = decayed(b.prob, b.lastUpdateTimeMs, at);
  return out;
}

function sorted(buckets: readonly BucketState[]): BucketState[] {
  return [...buckets].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}

const noOffers = { applied: 0, learning_over: 0, too_old: 0, too_far_future: 0 };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A clock the test moves, and `count` ready replicas on one fresh key prefix reading it. */
async function replicas(count: number, options: Partial<RedisStoreOptions> = {}) {
  const keyPrefix = uniqueKeyPrefix("offers");
  cleanups.push(() => deleteKeys(url, keyPrefix));
  const clock = { nowMs: t0 };
  const stores: RedisStore[] = [];
  for (let i = 0; i < count; i++) {
    const store = new RedisStore({
      url,
      keyPrefix,
      now: () => clock.nowMs,
      decayRatePerSecond: lambda,
      ...options,
    });
    cleanups.push(() => store.stop());
    store.start();
    await store.whenReady();
    stores.push(store);
  }
  return { stores, clock, keyPrefix };
}

async function one(options: Partial<RedisStoreOptions> = {}) {
  const { stores, clock } = await replicas(1, options);
  return { store: stores[0] as RedisStore, clock };
}

describe.skipIf(url === "")("applyOffer on Redis", () => {
  test("an offer raises what it exceeds, at the later of the two times, and leaves the rest", async () => {
    const { store } = await one();
    await store.applyUpdate({
      seed,
      deltas: [
        { rowId: 0n, colId: 0n, deltaProb: 0.5, lastUpdateTimeMs: BigInt(t0) },
        { rowId: 0n, colId: 1n, deltaProb: 0.5, lastUpdateTimeMs: BigInt(t0) },
      ],
    });
    const result = await store.applyOffer(
      offer([
        [0, 0, 0.6, t0 - 10_000], // worth 0.6·e^(−0.1) ≈ 0.543 at t0: raises, stamped t0
        [0, 1, 0.55, t0 - 20_000], // worth ≈ 0.450 at t0: lower, left as it was
        [1, 2, 0.25, t0 - 5_000], // a new bucket, as offered
      ]),
    );
    const raised = expect.closeTo(decayed(0.6, t0 - 10_000, t0), 12);
    expect(result.status).toBe("applied");
    expect(sorted(result.buckets)).toEqual([
      { rowId: 0, colId: 0, prob: raised, lastUpdateTimeMs: t0 },
      { rowId: 1, colId: 2, prob: 0.25, lastUpdateTimeMs: t0 - 5_000 },
    ]);
    expect(sorted(await store.getSeed(seed))).toEqual([
      { rowId: 0, colId: 0, prob: raised, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 },
      { rowId: 1, colId: 2, prob: 0.25, lastUpdateTimeMs: t0 - 5_000 },
    ]);
    expect((await store.stats()).offers).toEqual({ ...noOffers, applied: 1 });
  });

  test("offering the same view again, or overlapping views in either order, leaves what one offer would", async () => {
    const { stores } = await replicas(1);
    const store = stores[0] as RedisStore;
    const a = offer([
      [0, 0, 0.4, t0],
      [0, 1, 0.2, t0 - 5_000],
      [2, 7, 0.9, t0 - 1_000],
    ]);
    const b = offer([
      [0, 0, 0.3, t0 + 2_000],
      [0, 1, 0.6, t0 - 9_000],
      [3, 3, 0.1, t0],
    ]);
    const ab = store.namespace("ab");
    const ba = store.namespace("ba");
    const twice = store.namespace("twice");
    await ab.applyOffer(a);
    await ab.applyOffer(b);
    await ba.applyOffer(b);
    await ba.applyOffer(a);
    for (const view of [a, b, a, b]) await twice.applyOffer(view);
    expect(await twice.applyOffer(a)).toEqual({ status: "applied", buckets: [] });
    // A maximum, never a sum: each bucket is worth its largest offer, whatever the order.
    const at = t0 + 10_000;
    const expected = {
      "0:0": decayed(0.4, t0, at),
      "0:1": decayed(0.6, t0 - 9_000, at),
      "2:7": decayed(0.9, t0 - 1_000, at),
      "3:3": decayed(0.1, t0, at),
    };
    for (const ns of [ab, ba, twice]) {
      const values = valuesAt(await ns.getSeed(seed), at);
      expect(Object.keys(values)).toEqual(Object.keys(expected));
      for (const [key, value] of Object.entries(expected))
        expect(values[key]).toBeCloseTo(value, 12);
    }
    // Left as it was when not raised: 0:0 keeps the stamp of the offer that won first.
    expect((await ab.getSeed(seed)).find((x) => x.colId === 0 && x.rowId === 0)).toEqual({
      rowId: 0,
      colId: 0,
      prob: 0.4,
      lastUpdateTimeMs: t0,
    });
  });

  test("an offer of 0 creates nothing, and an empty offer is applied", async () => {
    const { store } = await one();
    expect(await store.applyOffer(offer([[0, 0, 0, t0]]))).toEqual({
      status: "applied",
      buckets: [],
    });
    expect(await store.applyOffer(offer([]))).toEqual({ status: "applied", buckets: [] });
    expect(await store.getSeed(seed)).toEqual([]);
    expect(await store.stats()).toMatchObject({ seeds: 0, buckets: 0, namespaces: 0 });
  });

  test("learning ends learningPeriodMs after the epoch began, on the injected clock", async () => {
    const { store, clock } = await one({ learningPeriodMs: 1_000 });
    expect(store.epochs.current?.startedAtMs).toBe(t0);
    clock.nowMs = t0 + 1_000;
    expect((await store.applyOffer(offer([[0, 0, 0.5, t0]]))).status).toBe("applied");
    clock.nowMs = t0 + 1_001;
    expect(await store.applyOffer(offer([[0, 0, 0.9, t0]]))).toEqual({
      status: "learning_over",
      buckets: [],
    });
    expect(await store.namespace("other").applyOffer(offer([[0, 0, 0.9, t0]]))).toEqual({
      status: "learning_over",
      buckets: [],
    });
    expect(await store.getSeed(seed)).toEqual([
      { rowId: 0, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 },
    ]);
    expect(await store.stats()).toMatchObject({
      namespaces: 1,
      offers: { ...noOffers, applied: 1, learning_over: 2 },
    });
  });

  test("offers for seeds outside the live range are dropped and counted", async () => {
    const { store, clock } = await one({ learningPeriodMs: 10 * windowMs });
    const ahead = seed + BigInt(3 * windowMs);
    expect(await store.applyOffer(offer([[0, 0, 0.5, t0]], ahead))).toEqual({
      status: "too_far_future",
      buckets: [],
    });
    clock.nowMs = t0 + 3 * windowMs;
    expect(await store.applyOffer(offer([[0, 0, 0.5, t0]]))).toEqual({
      status: "too_old",
      buckets: [],
    });
    expect(await store.getSeed(seed)).toEqual([]);
    expect(await store.getSeed(ahead)).toEqual([]);
    expect((await store.stats()).offers).toEqual({ ...noOffers, too_old: 1, too_far_future: 1 });
  });

  test("an offer below the floor another replica raised is dropped as too old", async () => {
    const { stores } = await replicas(2);
    const [a, b] = stores as [RedisStore, RedisStore];
    // b evicts; a has not (its own SeedRange still accepts the seed): the script checks the floor.
    await b.evictBefore(seed + BigInt(windowMs));
    expect(await a.applyOffer(offer([[0, 0, 0.5, t0]]))).toEqual({
      status: "too_old",
      buckets: [],
    });
    expect((await a.stats()).offers).toEqual({ ...noOffers, too_old: 1 });
  });

  test("a bad offer throws naming the field and changes nothing", async () => {
    const { store } = await one();
    await store.applyDelta(seed, 0, 0, 0.2, t0);
    const before = await store.getSeed(seed);
    const bad = offer([
      [0, 0, 0.9, t0],
      [0, 1, 0.5, t0],
    ]);
    (bad.buckets[0] as { prob: number }).prob = 1.5;
    await expect(store.applyOffer(bad)).rejects.toMatchObject({
      code: "out_of_range",
      field: "buckets[0].prob",
    });
    const late = offer([
      [0, 0, 0.9, t0],
      [0, 1, Number.NaN, t0],
    ]);
    await expect(store.applyOffer(late)).rejects.toMatchObject({
      code: "invalid_argument",
      field: "buckets[1].prob",
    });
    expect(await store.getSeed(seed)).toEqual(before);
    expect((await store.stats()).offers).toEqual(noOffers);
  });

  test("the limits count what every replica wrote, and a refused offer writes nothing", async () => {
    const { stores } = await replicas(2, { maxBucketsPerSeed: 3, maxSeedsPerNamespace: 1 });
    const [a, b] = stores as [RedisStore, RedisStore];
    await a.applyOffer(
      offer([
        [0, 0, 0.1, t0],
        [0, 1, 0.1, t0],
      ]),
    );
    const tooMany = await b
      .applyOffer(
        offer([
          [0, 0, 0.9, t0],
          [0, 2, 0.1, t0],
          [0, 3, 0.1, t0],
        ]),
      )
      .catch((error: unknown) => error);
    expect(tooMany).toBeInstanceOf(StoreError);
    expect(tooMany).toMatchObject({ code: "limit_exceeded", field: "seed" });
    expect((tooMany as Error).message).toContain("maxBucketsPerSeed (3)");
    expect(sorted(await b.getSeed(seed)).map((x) => [x.colId, x.prob])).toEqual([
      [0, 0.1],
      [1, 0.1],
    ]);
    await expect(
      b.applyOffer(offer([[0, 0, 0.1, t0]], seed + BigInt(windowMs))),
    ).rejects.toMatchObject({ code: "limit_exceeded", field: "seed" });
    expect(await b.stats()).toMatchObject({
      seeds: 1,
      buckets: 2,
      offers: noOffers,
      limitRefusals: { max_buckets_per_seed: 1, max_seeds_per_namespace: 1 },
    });
  });

  test("raised buckets reach the other replicas' change feeds, and unchanged ones are not published", async () => {
    const { stores, keyPrefix } = await replicas(2);
    const [a, b] = stores as [RedisStore, RedisStore];
    // What goes out on the channel, read as a third party would.
    const published: ChangeMessage[] = [];
    const raw = new Redis(url);
    cleanups.push(async () => raw.disconnect());
    raw.on("smessageBuffer", (_channel: Buffer, data: Buffer) => {
      const message = parseMessage(data);
      if (message) published.push(message);
    });
    // One Redis: one slot group, one change channel.
    await raw.ssubscribe((new KeyLayout(keyPrefix, 1).groups[0] as SlotGroup).channel);
    // b's view as its streams would hold it: the latest value of every bucket, and every value handed on.
    const view = new Map<string, number>();
    const handed: string[] = [];
    let check = () => {};
    b.onChange((namespace, _seed, buckets) => {
      for (const x of buckets) {
        view.set(`${namespace}/${x.rowId}:${x.colId}`, x.prob);
        handed.push(`${namespace}/${x.rowId}:${x.colId}=${x.prob}`);
      }
      check();
    });
    const until = (condition: () => boolean) =>
      new Promise<void>((resolve) => {
        check = () => {
          if (condition()) resolve();
        };
        check();
      });

    const checkout = a.namespace("checkout");
    await checkout.applyDelta(seed, 0, 1, 0.5, t0);
    const { buckets } = await checkout.applyOffer(
      offer([
        [0, 1, 0.25, t0], // lower: not raised, not published
        [0, 2, 0.75, t0],
        [4, 0, 0.5, t0],
      ]),
    );
    expect(sorted(buckets).map((x) => [x.rowId, x.colId])).toEqual([
      [0, 2],
      [4, 0],
    ]);
    // Offering it again raises nothing, and publishes nothing.
    expect((await checkout.applyOffer(offer([[0, 2, 0.75, t0]]))).buckets).toEqual([]);
    await checkout.applyDelta(seed, 7, 7, 0.125, t0);
    await until(() => view.get("checkout/7:7") === 0.125);
    expect(Object.fromEntries(view)).toEqual({
      "checkout/0:1": 0.5,
      "checkout/0:2": 0.75,
      "checkout/4:0": 0.5,
      "checkout/7:7": 0.125,
    });
    expect(handed).not.toContain("checkout/0:1=0.25");
    // Three messages: the delta, the offer (only what it raised, as the group's next sequence), the delta.
    await new Promise<void>((resolve) => {
      if (published.length >= 3) resolve();
      else raw.on("smessageBuffer", () => published.length >= 3 && resolve());
    });
    expect(published).toHaveLength(3);
    expect(published.map((message) => message.sequence)).toEqual([1, 2, 3]);
    expect(published[1]?.origin).toBe(a.replicaId);
    expect(published[1]?.buckets).toEqual([
      { rowId: 0, colId: 2, prob: 0.75, lastUpdateTimeMs: t0 },
      { rowId: 4, colId: 0, prob: 0.5, lastUpdateTimeMs: t0 },
    ]);
    expect(published[2]?.buckets.map((bucket) => bucket.rowId)).toEqual([7]);
  });

  test("an offer is refused as unavailable while the store does not know its epoch", async () => {
    const keyPrefix = uniqueKeyPrefix("offers");
    const store = new RedisStore({ url, keyPrefix, now: () => t0 });
    expect(store.epochs.current).toBeUndefined();
    await expect(store.applyOffer(offer([[0, 0, 0.5, t0]]))).rejects.toMatchObject({
      code: "unavailable",
      field: "redis",
    });
    // Validation still comes first.
    await expect(store.applyOffer(offer([[0, 0, 2, t0]]))).rejects.toMatchObject({
      field: "buckets[0].prob",
    });
    expect(store.redisStats().errors.offer).toBe(1);
    expect(store.ready).toBe(false);
  });
});
