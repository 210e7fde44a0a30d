// Temporary ablation harness (not committed): Redis µs per apply script for variants of scripts.ts.
import { cpSync, readFileSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { Redis } from "ioredis";
import { lcg, scriptMicrosPerCall, trackerMix } from "../bench/workload.js";

const redisUrl = "redis://127.0.0.1:6379";
const base = readFileSync(new URL("../src/scripts.ts", import.meta.url), "utf8");
const cut = (marker: string) => (s: string) => {
  if (!s.includes(marker)) throw new Error(`no marker ${marker}`);
  return s.replace(marker, `do return {'ok', 0, 0, ''} end\n${marker}`);
};
const variants: Record<string, (s: string) => string> = {
  full: (s) => s,
  afterUnpack: cut("local function clamp01"),
  afterIndex: cut("for _, slot in ipairs(slots) do\n  local values"),
  afterHmget: cut("-- order lists the buckets"),
  afterArith: cut("local before = tonumber(redis.call('HGET', KEYS[4]"),
  beforeWrites: cut("for _, slot in ipairs(slotOrder) do"),
  beforeIncr: cut("local sequence = redis.call('INCR', KEYS[3])"),
};
const only = process.argv.slice(2);
const next = lcg();
for (const [name, edit] of Object.entries(variants)) {
  if (only.length && !only.includes(name)) continue;
  const dir = new URL(`./v-${name}/`, import.meta.url);
  rmSync(dir, { recursive: true, force: true });
  cpSync(new URL("../src/", import.meta.url), dir, { recursive: true });
  writeFileSync(new URL("scripts.ts", dir), edit(base));
  const { RedisStore } = (await import(new URL("index.ts", dir).href)) as typeof import("../src/index.js");
  const raw = new Redis(redisUrl);
  const prefix = uniqueKeyPrefix("ablate");
  const store = new RedisStore({ url: redisUrl, keyPrefix: prefix });
  store.start();
  await store.whenReady();
  const seed = BigInt(Math.floor(Date.now() / 300_000) * 300_000);
  for (let i = 0; i < 300; i++) await store.applyUpdate(trackerMix(seed, Date.now(), next));
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    await raw.config("RESETSTAT");
    for (let i = 0; i < 500; i++) await store.applyUpdate(trackerMix(seed, Date.now(), next));
    runs.push(await scriptMicrosPerCall(raw));
  }
  await store.stop();
  await deleteKeys(redisUrl, prefix);
  raw.disconnect();
  rmSync(dir, { recursive: true, force: true });
  console.log(name.padEnd(14), runs.map((x) => x.toFixed(0)).join(" "), "µs/call");
}
