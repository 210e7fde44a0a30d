import type { BucketState, SeedPage } from "@fair/state-store";
import type { RedisClient } from "./connections.js";
import { type KeyLayout, type SlotGroup, seedField } from "./keys.js";
import { parseBlock, parseBlockMember, parseSeedField, parseValue } from "./message.js";
import type { BlockRead } from "./relay.js";
import { evictScript, type LuaScript, rereadScript } from "./scripts.js";
import { encodeSeedCursor, type SeedScan } from "./seed-cursor.js";

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

/** One seed's block members in one group, in index order (`<row>|<block>` suffixes). */
async function seedBlocks(
  redis: RedisClient,
  group: SlotGroup,
  field: string,
  score: string,
): Promise<string[]> {
  const members = await redis.zrangebyscore(group.blocks, score, score);
  const prefix = `${field}|`;
  return members.filter((member) => member.startsWith(prefix)).map((m) => m.slice(prefix.length));
}

/** The buckets (prob > 0) of one block hash read as buffers. */
function liveBuckets(row: number, fields: Record<string, Buffer>): BucketState[] {
  const out: BucketState[] = [];
  for (const name in fields) {
    const bucket = parseValue(row, Number(name), fields[name] as Buffer);
    if (bucket !== undefined && bucket.prob > 0) out.push(bucket);
  }
  return out;
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
      const blocks = await seedBlocks(redis, group, field, score);
      const read = await Promise.all(
        blocks.map(async (suffix) => {
          const row = Number(suffix.slice(0, suffix.indexOf("|")));
          const fields = await redis.hgetallBuffer(keys.block(group, `${field}|${suffix}`));
          return liveBuckets(row, fields);
        }),
      );
      return read.flat();
    }),
  );
  return parts.flat();
}

/**
 * One page of one (namespace, seed), from `start`: groups in order, each
 * group's blocks of the seed in index order, each block whole (HGETALL) —
 * at most `limit` buckets, the rest of a block carried in the cursor — in
 * at most `maxCalls` Redis calls.
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
  let { group: index, block } = start;
  let carry = [...start.carry];
  let listed: { index: number; blocks: string[] } | undefined;
  const buckets: BucketState[] = [];
  for (let calls = 0; buckets.length < limit && calls < maxCalls && index < keys.groups.length; ) {
    const group = keys.groups[index] as SlotGroup;
    const row = Number(block.slice(0, block.indexOf("|")));
    if (carry.length > 0) {
      const cols = carry.slice(0, limit - buckets.length);
      carry = carry.slice(cols.length);
      const values = await redis.hmgetBuffer(
        keys.block(group, `${field}|${block}`),
        ...cols.map(String),
      );
      calls++;
      cols.forEach((colId, i) => {
        const value = values[i];
        const bucket = value == null ? undefined : parseValue(row, colId, value);
        if (bucket !== undefined && bucket.prob > 0) buckets.push(bucket);
      });
      continue;
    }
    if (listed?.index !== index) {
      listed = { index, blocks: await seedBlocks(redis, group, field, score) };
      calls++;
    }
    const next = listed.blocks.find((suffix) => block === "" || suffix > block);
    if (next === undefined) {
      index++;
      block = "";
      continue;
    }
    block = next;
    const nextRow = Number(next.slice(0, next.indexOf("|")));
    const read = liveBuckets(
      nextRow,
      await redis.hgetallBuffer(keys.block(group, `${field}|${next}`)),
    );
    calls++;
    const room = limit - buckets.length;
    buckets.push(...read.slice(0, room));
    carry = read.slice(room).map((bucket) => bucket.colId);
  }
  if (index >= keys.groups.length) return { buckets, next: undefined };
  return { buckets, next: encodeSeedCursor({ group: index, block, carry }) };
}

/** One group read back whole, atomically (the reread script): its sequence and every live block. */
export async function rereadGroup(
  redis: RedisClient,
  group: SlotGroup,
  horizonScore: string,
): Promise<{ sequence: number; blocks: BlockRead[] }> {
  const reply = (await runScript(
    redis,
    rereadScript,
    [group.sequence, group.blocks],
    [group.base, horizonScore],
  )) as unknown[];
  const sequence = Number(reply[0]);
  const blocks: BlockRead[] = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const member = parseBlockMember(String(reply[i]));
    if (member === undefined) continue;
    blocks.push({
      namespace: member.namespace,
      seed: member.seed,
      buckets: parseBlock(member.row, reply[i + 1] as Buffer[]),
    });
  }
  return { sequence, blocks };
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
          [group.floor, group.blocks, group.counts, group.namespaces],
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
