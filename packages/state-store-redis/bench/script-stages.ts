// Where the apply script's time goes: Redis's own time per call
// (`INFO commandstats`) of the apply script cut short after each of its
// stages, RedisStore alone, one update of 100 deltas at a time (a tracker's
// mix over 3 × 1000 buckets), on one Redis.
//
//   pnpm --filter @fair/state-store-redis exec tsx --conditions=development bench/script-stages.ts [stage…]
//
// Each stage is a copy of src/ whose scripts.ts returns at a marker (the
// copy lives in bench/.stages/<n> while it runs: a path of its own, or the
// module cache would hand back the first). A stage's time less the one
// before it is what that stage costs; subtract "unpacked" from "full" for
// the per-bucket work. Needs Redis at FAIR_BENCH_REDIS_URL (default
// redis://127.0.0.1:6379); it writes under key prefixes of its own and
// deletes them afterwards.
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { lcg, scriptMicrosPerCall, trackerMix } from "./workload.js";

const redisUrl = process.env["FAIR_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const source = readFileSync(new URL("../src/scripts.ts", import.meta.url), "utf8");

/** The script, returning "nothing changed" just before `marker`. */
const cutBefore = (marker: string) => (script: string) => {
  if (!script.includes(marker)) throw new Error(`scripts.ts no longer contains ${marker}`);
  return script.replace(marker, `do return {'ok', 0, 0, ''} end\n${marker}`);
};

const stages: Record<string, (script: string) => string> = {
  "entries unpacked": cutBefore("local function clamp01"),
  "buckets indexed (field names)": cutBefore("for _, slot in ipairs(slots) do\n  local values"),
  "stored values read (HMGET)": cutBefore("-- order lists the buckets"),
  "arithmetic done": cutBefore("local before = tonumber(redis.call('HGET', KEYS[4]"),
  "writes and message packed, limits checked": cutBefore("for _, slot in ipairs(slotOrder) do"),
  "written (HSET, PEXPIRE, ZADD)": cutBefore("local sequence = redis.call('INCR', KEYS[3])"),
  "full (sequence, SPUBLISH)": (script) => script,
};

const only = process.argv.slice(2);
const next = lcg();
const windowMs = 300_000;
const copies = new URL("./.stages/", import.meta.url);
for (const [n, [stage, edit]] of Object.entries(stages).entries()) {
  if (only.length > 0 && !only.some((word) => stage.includes(word))) continue;
  const copy = new URL(`${n}/`, copies);
  rmSync(copy, { recursive: true, force: true });
  cpSync(new URL("../src/", import.meta.url), copy, { recursive: true });
  writeFileSync(new URL("scripts.ts", copy), edit(source));
  try {
    const { RedisStore } = (await import(
      new URL("index.ts", copy).href
    )) as typeof import("../src/index.js");
    const raw = new Redis(redisUrl);
    const keyPrefix = uniqueKeyPrefix("bench-stages");
    const store = new RedisStore({ url: redisUrl, keyPrefix });
    store.start();
    await store.whenReady();
    const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);
    for (let i = 0; i < 300; i++) await store.applyUpdate(trackerMix(seed, Date.now(), next));
    const runs: string[] = [];
    for (let run = 0; run < 3; run++) {
      await raw.config("RESETSTAT");
      for (let i = 0; i < 500; i++) await store.applyUpdate(trackerMix(seed, Date.now(), next));
      runs.push((await scriptMicrosPerCall(raw)).toFixed(0));
    }
    await store.stop();
    await deleteKeys(redisUrl, keyPrefix);
    raw.disconnect();
    console.log(`${stage.padEnd(44)} ${runs.join(" / ")} µs a call`);
  } finally {
    rmSync(copies, { recursive: true, force: true });
  }
}
