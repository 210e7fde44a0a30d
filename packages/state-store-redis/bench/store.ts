// RedisStore alone, no server: the apply and offer scripts' cost.
//
//   pnpm --filter @fair/state-store-redis exec tsx --conditions=development bench/store.ts [rounds]
//
// Per round: 1000 `applyUpdate`s of 100 deltas one at a time (a tracker's mix,
// 30 % +0.05 and 70 % −0.01 over 3 × 1000 buckets) — the time per update and
// Redis's own time per script call (`INFO commandstats`, cmdstat_evalsha
// usec_per_call) —, then 992 more, 16 in flight (deltas/s), the bytes
// per bucket of a 1000-bucket row (`MEMORY USAGE` / `HLEN` over its keys: row
// 0 of those updates, and a row whose buckets each took one +0.05), and 500
// `applyOffer`s of 100 buckets one at a time (Redis's time per offer script).
// Needs Redis at FAIR_BENCH_REDIS_URL (default redis://127.0.0.1:6379); it
// writes under key prefixes of its own and deletes them afterwards.
// FAIR_BENCH_STORE names another module exporting RedisStore (to compare
// versions of the scripts side by side).
import { create } from "@bufbuild/protobuf";
import { DeltaUpdateSchema, StateOfferSchema } from "@fair/state-proto";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { bytesPerBucket, DELTAS, lcg, scriptMicrosPerCall, trackerMix } from "./workload.js";

const rounds = Number(process.argv[2] ?? 1);
const redisUrl = process.env["FAIR_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const module = process.env["FAIR_BENCH_STORE"] ?? "../src/index.js";
const { RedisStore } = (await import(module)) as typeof import("../src/index.js");
const windowMs = 300_000;

const next = lcg();

async function round() {
  const raw = new Redis(redisUrl);
  const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
  const update = () => trackerMix(seed, Date.now(), next);

  const applyPrefix = uniqueKeyPrefix("bench-store");
  const store = new RedisStore({ url: redisUrl, keyPrefix: applyPrefix });
  store.start();
  await store.whenReady();
  for (let i = 0; i < 200; i++) await store.applyUpdate(update());
  await raw.config("RESETSTAT");
  let started = performance.now();
  for (let i = 0; i < 1000; i++) await store.applyUpdate(update());
  const applyMs = (performance.now() - started) / 1000;
  const applyUs = await scriptMicrosPerCall(raw);
  started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 62; i++) await store.applyUpdate(update());
    }),
  );
  const parallel = (16 * 62 * DELTAS) / ((performance.now() - started) / 1000);
  const bytesPerBucketRow0 = await bytesPerBucket(raw, applyPrefix, seed, 0);
  // A row of 1000 buckets that each took one +0.05: a value with a short
  // decimal form (the worst case for always writing 17 digits).
  const now = Date.now();
  for (let i = 0; i < 10; i++) {
    await store.applyUpdate(
      create(DeltaUpdateSchema, {
        seed,
        deltas: Array.from({ length: DELTAS }, (_, j) => ({
          rowId: 9n,
          colId: BigInt(i * DELTAS + j),
          deltaProb: 0.05,
          lastUpdateTimeMs: BigInt(now),
        })),
      }),
    );
  }
  const bytesPerShort = await bytesPerBucket(raw, applyPrefix, seed, 9);
  await store.stop();
  await deleteKeys(redisUrl, applyPrefix);

  // A fresh prefix is a fresh epoch: learning is open for learningPeriodMs.
  const offerPrefix = uniqueKeyPrefix("bench-offer");
  const learner = new RedisStore({ url: redisUrl, keyPrefix: offerPrefix });
  learner.start();
  await learner.whenReady();
  const offer = () =>
    create(StateOfferSchema, {
      seed,
      buckets: Array.from({ length: DELTAS }, () => ({
        rowId: BigInt(Math.floor(next() * 3)),
        colId: BigInt(Math.floor(next() * 1000)),
        prob: next(),
        lastUpdateTimeMs: BigInt(Date.now() - Math.floor(next() * 1000)),
      })),
    });
  for (let i = 0; i < 100; i++) await learner.applyOffer(offer());
  await raw.config("RESETSTAT");
  started = performance.now();
  for (let i = 0; i < 500; i++) await learner.applyOffer(offer());
  const offerMs = (performance.now() - started) / 500;
  const offerUs = await scriptMicrosPerCall(raw);
  await learner.stop();
  await deleteKeys(redisUrl, offerPrefix);
  raw.disconnect();
  return {
    "apply ms/update": applyMs.toFixed(2),
    "apply µs/script": applyUs.toFixed(0),
    "deltas/s (16 in flight)": Math.round(parallel),
    "B/bucket": bytesPerBucketRow0.toFixed(1),
    "B/bucket at 0.05": bytesPerShort.toFixed(1),
    "offer ms/offer": offerMs.toFixed(2),
    "offer µs/script": offerUs.toFixed(0),
  };
}

const results = [];
for (let i = 0; i < rounds; i++) results.push(await round());
console.log(`${module}, ${DELTAS} per update/offer, node ${process.version}`);
console.table(results);
