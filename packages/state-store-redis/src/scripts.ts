import { createHash } from "node:crypto";

/** A Lua script and its SHA-1, for `EVALSHA` with a fallback to `EVAL`. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): LuaScript {
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

// The apply and offer scripts share their layout, their start (the epoch and
// floor checks, reading the stored values) and their end (the limits, the
// writes, the change message); only the arithmetic between differs.
//
// The epoch check comes first: a replica passes the epoch key's value as it
// last read it, and a script that finds something else there (the key is
// gone: Redis lost its data; or another replica made a new epoch since)
// writes nothing and returns what it found, so the replica learns the new
// epoch and retries. A replica that does not know its epoch yet passes ""
// and is not checked.
//
// The entries come in one binary argument (entry-args.ts), so the script
// computes with exactly the doubles TypeScript validated, and no decimal is
// parsed per delta. Numbers go out with %.17g, which always reads back as
// the same double (Number in JavaScript, tonumber in Lua): the JavaScript
// side sees exactly what Lua computed. Timestamps, always integers below
// 2^53, go out with %d; columns, below 2^32, too, as the field names and
// message lines have always had them. Cheaper than trying %.15g first and
// checking the round trip; a value with a short exact form (0.05) is
// stored with 17 digits ("0.050000000000000003"), the same double.
//
// The limits are checked after the arithmetic and before any write, so a
// refused batch leaves nothing behind: the seed may hold at most
// maxBucketsPerSeed buckets afterwards, and a seed that held none may start
// holding some only while the namespace holds fewer than
// maxSeedsPerNamespace live seeds (scored at or above the horizon in its
// seed set, which the script keeps: a seed is in it while it holds buckets)
// and, if the namespace holds no live seed, only while fewer than
// maxNamespaces namespaces do (scored at or above the horizon in the
// namespace set, which the script keeps too: a namespace is in it while its
// seed set is not empty, scored by its latest seed).
//
// KEYS: 1 meta hash, 2 seed index, 3 floor, 4 the namespace's seed set,
//       5 the namespace set, 6 the epoch key, 7.. the row hashes, one per row
// ARGV: 1 seed (20 digits), 2 index member, 3 index score, 4 TTL in ms,
//       5 λ per ms, 6 channel ("" = none), 7 "S" to SPUBLISH, else PUBLISH,
//       8 message header, 9 maxBucketsPerSeed, 10 maxSeedsPerNamespace,
//       11 the horizon's score, 12 maxNamespaces, 13 the encoded namespace,
//       14 the epoch key's value as expected ("" = do not check),
//       15 row count R, 16..15+R the row ids,
//       16+R the entries, packed (entry-args.ts): 24 bytes each, little-endian
//       uint32 row slot (1..R), uint32 column, double value, double timestamp
// Returns {"epoch", what the epoch key holds ("" when missing)},
// {"too_old"}, {"limit", "buckets" | "seeds" | "namespaces", count}
// or {"ok", message}; message is "" when nothing changed.
const batchStart = `
if ARGV[14] ~= '' then
  local epoch = redis.call('GET', KEYS[6])
  if epoch ~= ARGV[14] then return {'epoch', epoch or ''} end
end
local floor = redis.call('GET', KEYS[3])
if floor and ARGV[1] < floor then return {'too_old'} end
local format = string.format
local decay = tonumber(ARGV[5])
local rows = tonumber(ARGV[15])

-- The entries, unpacked once: slot, column, value and timestamp of entry i
-- (four entries per struct.unpack call while four are left: half the cost
-- of one per call).
local packed = ARGV[16 + rows]
local count = #packed / 24
local eslot, ecol, evalue, ets = {}, {}, {}, {}
do
  local unpackAt, i, pos = struct.unpack, 1, 1
  while i + 3 <= count do
    eslot[i], ecol[i], evalue[i], ets[i],
    eslot[i + 1], ecol[i + 1], evalue[i + 1], ets[i + 1],
    eslot[i + 2], ecol[i + 2], evalue[i + 2], ets[i + 2],
    eslot[i + 3], ecol[i + 3], evalue[i + 3], ets[i + 3],
    pos = unpackAt('<I4I4ddI4I4ddI4I4ddI4I4dd', packed, pos)
    i = i + 4
  end
  while i <= count do
    eslot[i], ecol[i], evalue[i], ets[i], pos = unpackAt('<I4I4dd', packed, pos)
    i = i + 1
  end
end

local function clamp01(x)
  if x <= 0 then return 0 elseif x > 1 then return 1 end
  return x
end

-- Every stored value the batch needs, one HMGET per row (in chunks, so a
-- huge batch stays within Lua's unpack limit). Buckets are keyed by slot,
-- then by column number; a column's field name is its decimal form.
local function chunked(command, key, list)
  local out = {}
  for i = 1, #list, 1000 do
    local part = redis.call(command, key, unpack(list, i, math.min(i + 999, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end
-- Per slot: the columns' field names in first-seen order (wanted), and
-- each column's field name by its number (names).
local wanted, names = {}, {}
for i = 1, count do
  local slot, col = eslot[i], ecol[i]
  local byCol = names[slot]
  if not byCol then
    byCol = {}
    names[slot] = byCol
    wanted[slot] = {}
  end
  if not byCol[col] then
    local list, name = wanted[slot], format('%d', col)
    byCol[col] = name
    list[#list + 1] = name
  end
end
local stored = {}
for slot, list in pairs(wanted) do
  local values, byName = chunked('HMGET', KEYS[6 + slot], list), {}
  for i, name in ipairs(list) do byName[name] = values[i] end
  stored[slot] = byName
end

-- Each bucket the batch names, once: its stored value, or the default
-- bucket {0, 0} (a tombstone counts as default). order lists the buckets
-- the batch changed, in the order it first changed them.
local buckets, order = {}, {}
for slot in pairs(wanted) do buckets[slot] = {} end
local function bucket(slot, col)
  local row = buckets[slot]
  local b = row[col]
  if not b then
    local name = names[slot][col]
    b = { slot = slot, col = name, p = 0, t = 0, held = false, touched = false }
    local value = stored[slot][name]
    if value then
      local sep = string.find(value, ' ', 1, true)
      local p = tonumber(string.sub(value, 1, sep - 1))
      if p > 0 then
        b.p, b.t, b.held = p, tonumber(string.sub(value, sep + 1)), true
      end
    end
    row[col] = b
  end
  return b
end
local function touch(b)
  if not b.touched then
    b.touched = true
    order[#order + 1] = b
  end
end
`;

const batchEnd = `
if #order == 0 then return {'ok', ''} end

local ttl = ARGV[4]
local lines, writes, rowOrder, held = {}, {}, {}, 0
for _, b in ipairs(order) do
  local list = lines[b.slot]
  if not list then
    list = {}
    lines[b.slot] = list
    writes[b.slot] = {}
    rowOrder[#rowOrder + 1] = b.slot
  end
  local value = format('%.17g %d', b.p, b.t)
  local write = writes[b.slot]
  if b.p > 0 then
    write[#write + 1] = b.col
    write[#write + 1] = value
    if not b.held then held = held + 1 end
  elseif b.held then
    write[#write + 1] = b.col
    write[#write + 1] = value
    held = held - 1
  end
  list[#list + 1] = b.col .. ' ' .. value
end

local before = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local after = before + held
if after > tonumber(ARGV[9]) then return {'limit', 'buckets', tostring(after)} end
if before <= 0 and after > 0 then
  local live = redis.call('ZCOUNT', KEYS[4], ARGV[11], '+inf')
  if live >= tonumber(ARGV[10]) then return {'limit', 'seeds', tostring(live)} end
  if live == 0 then
    local spaces = redis.call('ZCOUNT', KEYS[5], ARGV[11], '+inf')
    if spaces >= tonumber(ARGV[12]) then return {'limit', 'namespaces', tostring(spaces)} end
  end
end

local out = { ARGV[8] }
for _, slot in ipairs(rowOrder) do
  local key = KEYS[6 + slot]
  local row = ARGV[15 + slot]
  if #writes[slot] > 0 then chunked('HSET', key, writes[slot]) end
  local version = redis.call('HINCRBY', key, 'v', 1)
  redis.call('PEXPIRE', key, ttl)
  redis.call('HSET', KEYS[1], 'r' .. row, '1')
  out[#out + 1] = 'R ' .. row .. ' ' .. version
  for _, line in ipairs(lines[slot]) do out[#out + 1] = line end
end
if held ~= 0 then redis.call('HINCRBY', KEYS[1], 'n', held) end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if after > 0 then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  if redis.call('PTTL', KEYS[4]) < tonumber(ttl) then redis.call('PEXPIRE', KEYS[4], ttl) end
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
local latest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
if #latest == 0 then
  redis.call('ZREM', KEYS[5], ARGV[13])
else
  redis.call('ZADD', KEYS[5], latest[2], ARGV[13])
end
local message = table.concat(out, '\\n')
if ARGV[6] ~= '' then
  if ARGV[7] == 'S' then
    redis.call('SPUBLISH', ARGV[6], message)
  else
    redis.call('PUBLISH', ARGV[6], message)
  end
end
return {'ok', message}
`;

// Applies one validated DeltaUpdate atomically, with the arithmetic of
// @fair/state-store's SeedTable.apply line for line (docs/design.md §3): in
// order, decay then add; late, decay the delta; clamp to [0, 1]; a bucket
// that falls to 0 is the default bucket again. Seed windows and timestamp
// clamping were decided in TypeScript from the server's clock; only the
// eviction floor, which other replicas may have raised, is checked here.
// Each entry is a delta: slot, column, delta, timestamp.
//
// A bucket that falls to 0 is kept as a tombstone "0 <ts>" until its seed
// expires: getSeed and the counts skip it, but a replica that lost messages
// and re-reads the row learns that the bucket is now 0.
export const applyScript = script(
  "apply",
  `${batchStart}
for i = 1, count do
  local a, ts = evalue[i], ets[i]
  local b = bucket(eslot[i], ecol[i])
  if not (b.held or b.touched) then
    -- The default bucket {0, 0}: every ts is in order, so prob = clamp01(a).
    if a > 0 then
      b.p, b.t = a, ts
      touch(b)
    end
  else
    if b.p == 0 then
      -- Fell to 0 earlier in this batch: default again.
      b.p, b.t = math.max(0, a), ts
    elseif ts >= b.t then
      local decayed = b.p
      if ts ~= b.t and decay ~= 0 then decayed = b.p * math.exp(-decay * (ts - b.t)) end
      b.p, b.t = clamp01(decayed + a), ts
    else
      local late = a
      if decay ~= 0 then late = a * math.exp(-decay * (b.t - ts)) end
      b.p = clamp01(b.p + late)
    end
    touch(b)
  end
end
${batchEnd}`,
);

// Merges one validated StateOffer atomically (learning mode), with the
// arithmetic of @fair/state-store's SeedTable.merge line for line: each
// offered (q, u) and the stored (p, t) are decayed to T = max(t, u) and the
// larger is kept, stamped T; a bucket the offer does not raise is left
// exactly as it was, and q = 0 never creates a bucket. A maximum, never a
// sum, so the same offer twice, or overlapping offers in any order, leave
// what one would. Each entry is an offered bucket: slot, column, q, u (u
// already clamped in TypeScript). Whether learning is still open was decided
// in TypeScript from the epoch the script checks.
export const offerScript = script(
  "offer",
  `${batchStart}
for i = 1, count do
  local q, u = evalue[i], ets[i]
  local b = bucket(eslot[i], ecol[i])
  if not (b.held or b.touched) then
    if q > 0 then
      b.p, b.t = q, u
      touch(b)
    end
  else
    local at = math.max(b.t, u)
    local kept, offered = b.p, q
    if at ~= b.t and decay ~= 0 then kept = b.p * math.exp(-decay * (at - b.t)) end
    if at ~= u and decay ~= 0 then offered = q * math.exp(-decay * (at - u)) end
    if offered > kept then
      b.p, b.t = offered, at
      touch(b)
    end
  end
end
${batchEnd}`,
);

// Reads the epoch key and creates it when it is missing, in one step:
// concurrent replicas that all find it missing all get the one epoch that
// won. A created epoch is announced on the change channel ("E1 <value>"),
// so the other replicas re-read the key at once (epoch.ts).
//
// KEYS: 1 the epoch key
// ARGV: 1 the new epoch's value, 2 channel ("" = none), 3 "S" to SPUBLISH
// Returns what the key holds afterwards.
export const epochScript = script(
  "epoch",
  `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  if ARGV[3] == 'S' then
    redis.call('SPUBLISH', ARGV[2], 'E1 ' .. ARGV[1])
  else
    redis.call('PUBLISH', ARGV[2], 'E1 ' .. ARGV[1])
  end
end
return ARGV[1]
`,
);

// Evicts every (namespace, seed) below a seed: raises the floor (so late
// deltas for those seeds are dropped by every replica), deletes their keys
// and index entries (the seed index, the namespace's seed set, and the
// namespace set's entry once that is empty, or its score lowered to the
// latest seed left), and counts the seeds and buckets that were held. Key
// names are derived here from the index, so the script runs on a single
// Redis, not across Cluster slots.
//
// KEYS: 1 seed index, 2 floor, 3 namespace set
// ARGV: 1 key prefix, 2 seed (20 digits), 3 its index score
// Returns {seeds, buckets}.
export const evictScript = script(
  "evict",
  `
local floor = redis.call('GET', KEYS[2])
if (not floor) or floor < ARGV[2] then redis.call('SET', KEYS[2], ARGV[2]) end
local seeds, buckets = 0, 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])) do
  local sep = string.find(member, ' ', 1, true)
  local seed = string.sub(member, 1, sep - 1)
  if seed < ARGV[2] then
    local digits = string.gsub(seed, '^0+(%d)', '%1')
    local tag = ARGV[1] .. '{' .. string.sub(member, sep + 1) .. '|' .. digits .. '}'
    local meta = tag .. ':m'
    local fields = redis.call('HGETALL', meta)
    local held = 0
    for i = 1, #fields, 2 do
      local field = fields[i]
      if field == 'n' then
        held = tonumber(fields[i + 1])
      elseif string.sub(field, 1, 1) == 'r' then
        redis.call('UNLINK', tag .. ':' .. field)
      end
    end
    redis.call('UNLINK', meta)
    redis.call('ZREM', KEYS[1], member)
    local space = string.sub(member, sep + 1)
    local seedSet = ARGV[1] .. 'ns:' .. space
    redis.call('ZREM', seedSet, seed)
    local latest = redis.call('ZRANGE', seedSet, -1, -1, 'WITHSCORES')
    if #latest == 0 then
      redis.call('ZREM', KEYS[3], space)
    else
      redis.call('ZADD', KEYS[3], latest[2], space)
    end
    if held > 0 then
      seeds = seeds + 1
      buckets = buckets + held
    end
  end
end
return {seeds, buckets}
`,
);
