import type { BucketState, SeedPage } from "@fair/state-store";
import type { RedisClient } from "./connections.js";
import { type KeyLayout, rowMember, type SlotGroup, seedField } from "./keys.js";
import { parseRowMember, parseRowPart, parseSeedField, parseValue } from "./message.js";
import type { RowPartRead } from "./relay.js";
import { evictScript, type LuaScript, rereadScript } from "./scripts.js";
import { encodeSeedCursor, type SeedScan } from "./seed-cursor.js";

/** Fields a page asks one HSCAN of a row part for, at most. */
const pageCount = 1024;

// Reads across slot groups: each group is asked on its own (its keys share
// one hash tag, so each command stays on one Cluster node), concurrently;
// auto-pipelining batches the commands per connection.

/**
 * Runs one of the store's scripts (defined on every connection by
 * `openConnections`: EVALSHA, and EVAL when Redis does not have it),
 * replies as buffers.
 */
export function runScript(
  redis: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | Buffer)[],
): Promise<unknown> {
  const run = (redis as unknown as ScriptCommands)[`${script.command}Buffer`];
  if (run === undefined || keys.length !== script.keys) {
    throw new Error(`the ${script.name} script takes ${script.keys} keys, not ${keys.length}`);
  }
  return run.call(redis, ...keys, ...args);
}

/** The commands `defineCommand` adds, by name. */
type ScriptCommands = Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;

/** One seed's rows in one group, in index order (the members' `<row>` suffixes). */
async function seedRows(
  redis: RedisClient,
  group: SlotGroup,
  field: string,
  score: string,
): Promise<number[]> {
  const members = await redis.zrangebyscore(group.rows, score, score);
  const prefix = `${field}|`;
  return members
    .filter((member) => member.startsWith(prefix))
    .map((member) => Number(member.slice(prefix.length)));
}

/** The buckets (prob > 0) among a row part's fields, read as buffers (flat field, value, …). */
function liveBuckets(row: number, fields: readonly Buffer[]): BucketState[] {
  return parseRowPart(row, fields).filter((bucket) => bucket.prob > 0);
}

/** Every non-default bucket of one (namespace, seed), every group at once. */
export async function readSeedWhole(
  redis: RedisClient,
  keys: KeyLayout,
  encodedNamespace: string,
  seed: bigint,
): Promise<BucketState[]> {
  const field = seedField(encodedNamespace, seed);
  const score = String(Number(seed));
  const parts = await Promise.all(
    keys.groups.map(async (group) => {
      const rows = await seedRows(redis, group, field, score);
      const read = await Promise.all(
        rows.map(async (row) => {
          const fields = await redis.hgetallBuffer(keys.rowPart(group, rowMember(field, row)));
          const live: BucketState[] = [];
          for (const name in fields) {
            const bucket = parseValue(row, Number(name), fields[name] as Buffer);
            if (bucket !== undefined && bucket.prob > 0) live.push(bucket);
          }
          return live;
        }),
      );
      return read.flat();
    }),
  );
  return parts.flat();
}

/**
 * One page of one (namespace, seed), from `start`: groups in order, each
 * group's rows of the seed in index order, each row part a part at a time
 * (`HSCAN`, at most `pageCount` fields a call, so no page reads a whole
 * row of any size) — at most `limit` buckets, what `HSCAN` returned beyond
 * them carried in the cursor — in at most `maxCalls` Redis calls.
 */
export async function readSeedPage(
  redis: RedisClient,
  keys: KeyLayout,
  encodedNamespace: string,
  seed: bigint,
  start: SeedScan,
  limit: number,
  maxCalls: number,
): Promise<SeedPage> {
  const field = seedField(encodedNamespace, seed);
  const score = String(Number(seed));
  let { group: index, row, inner } = start;
  let carry = [...start.carry];
  let listed: { index: number; rows: number[] } | undefined;
  const buckets: BucketState[] = [];
  for (let calls = 0; buckets.length < limit && calls < maxCalls && index < keys.groups.length; ) {
    const group = keys.groups[index] as SlotGroup;
    if (row !== undefined && carry.length > 0) {
      const cols = carry.slice(0, limit - buckets.length);
      carry = carry.slice(cols.length);
      const key = keys.rowPart(group, rowMember(field, row));
      const values = await redis.hmgetBuffer(key, ...cols.map(String));
      calls++;
      cols.forEach((colId, i) => {
        const value = values[i];
        const bucket = value == null ? undefined : parseValue(row as number, colId, value);
        if (bucket !== undefined && bucket.prob > 0) buckets.push(bucket);
      });
      continue;
    }
    if (row !== undefined && inner !== undefined) {
      const key = keys.rowPart(group, rowMember(field, row));
      const count = Math.min(pageCount, limit - buckets.length);
      const [next, fields] = await redis.hscanBuffer(key, inner, "COUNT", count);
      calls++;
      inner = next.toString() === "0" ? undefined : next.toString();
      for (const bucket of liveBuckets(row, fields)) {
        if (buckets.length < limit) buckets.push(bucket);
        else carry.push(bucket.colId);
      }
      continue;
    }
    // The next row of the group, or the next group.
    if (listed?.index !== index) {
      listed = { index, rows: await seedRows(redis, group, field, score) };
      calls++;
    }
    const after = row;
    const next = listed.rows.find((candidate) => after === undefined || candidate > after);
    if (next === undefined) {
      index++;
      row = undefined;
    } else {
      row = next;
      inner = "0";
    }
  }
  if (index >= keys.groups.length) return { buckets, next: undefined };
  return { buckets, next: encodeSeedCursor({ group: index, row, inner, carry }) };
}

/** One group read back whole, atomically (the reread script): its sequence and every live row part. */
export async function rereadGroup(
  redis: RedisClient,
  group: SlotGroup,
  horizonScore: string,
): Promise<{ sequence: number; parts: RowPartRead[] }> {
  const reply = (await runScript(
    redis,
    rereadScript,
    [group.sequence, group.rows],
    [group.base, horizonScore],
  )) as unknown[];
  const sequence = Number(reply[0]);
  const parts: RowPartRead[] = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const member = parseRowMember(String(reply[i]));
    if (member === undefined) continue;
    parts.push({
      namespace: member.namespace,
      seed: member.seed,
      buckets: parseRowPart(member.row, reply[i + 1] as Buffer[]),
    });
  }
  return { sequence, parts };
}

/** Buckets held per live (namespace, seed), summed over groups: `<ns>|<seed>` → count. */
export async function countBuckets(
  redis: RedisClient,
  keys: KeyLayout,
  horizon: bigint,
): Promise<Map<string, number>> {
  const all = await Promise.all(keys.groups.map((group) => redis.hgetall(group.counts)));
  const held = new Map<string, number>();
  for (const counts of all) {
    for (const field in counts) {
      const target = parseSeedField(field);
      const n = Number(counts[field]);
      if (target === undefined || target.seed < horizon || !(n > 0)) continue;
      held.set(field, (held.get(field) ?? 0) + n);
    }
  }
  return held;
}

/** Evicts every seed below `seed` in every group; the seed fields that held buckets, with their counts summed. */
export async function evictGroups(
  redis: RedisClient,
  keys: KeyLayout,
  padded: string,
  score: string,
): Promise<Map<string, number>> {
  const replies = await Promise.all(
    keys.groups.map(
      (group) =>
        runScript(
          redis,
          evictScript,
          [group.floor, group.rows, group.counts, group.namespaces],
          [group.base, padded, score],
        ) as Promise<Buffer[]>,
    ),
  );
  const evicted = new Map<string, number>();
  for (const reply of replies) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const field = String(reply[i]);
      evicted.set(field, (evicted.get(field) ?? 0) + Number(String(reply[i + 1])));
    }
  }
  return evicted;
}
