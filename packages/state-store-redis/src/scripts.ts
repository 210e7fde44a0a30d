/**
 * A Lua script, the command name a connection knows it by (`defineCommand`:
 * EVALSHA, then EVAL) and its fixed number of KEYS. Fixed, so a Cluster
 * client routes (and auto-pipelines) a call by its first key; keys a script
 * derives (row parts, named in ARGV) share that key's hash tag.
 */
export interface LuaScript {
  readonly name: string;
  readonly command: string;
  readonly keys: number;
  readonly source: string;
}

function script(name: string, keys: number, source: string): LuaScript {
  return { name, command: `fair_${name}`, keys, source };
}

// The apply and offer scripts share their layout, their start (the epoch and
// floor checks, reading the stored values) and their end (the limits, the
// writes, the change message); only the arithmetic between differs. One
// call covers one slot group (keys.ts): every key it touches shares the
// group's hash tag, so it runs on one Cluster node, atomically.
//
// The epoch check comes first: the replica passes the epoch it knows, and a
// group whose epoch copy holds something else (missing: the group is new,
// or its data was lost; another epoch: the data was lost and a new epoch
// began since) writes nothing and answers what it holds. The replica then
// reads the state epoch itself, follows it if it moved, and, when the
// group was only behind, calls again with "force" to write the group's
// copy. A replica that does not know its epoch yet passes "" and is not
// checked.
//
// Nothing is parsed or formatted as text per bucket: entries come in one
// binary argument (entry-args.ts), stored values are 16 bytes (prob and
// timestamp as little-endian doubles, struct.pack '<dd'), and the change
// message carries each changed bucket packed as row, column, prob and
// timestamp ('<I4I4dd'), so every replica sees exactly the doubles Lua
// computed.
//
// The limits are checked after the arithmetic and before any write, so a
// refused call leaves nothing behind. Within a group they are exact; across
// groups they are approximate (docs/decisions/0011): the seed may hold at
// most maxBucketsPerSeed buckets, counting this group's and the others'
// as the replica last saw them (ARGV 9); a seed that held none in this
// group may start holding some only while the namespace holds fewer than
// maxSeedsPerNamespace live seeds in it, and, if it holds none, only while
// fewer than maxNamespaces namespaces do. With one group (one Redis), they
// are exact, as the in-memory store's.
//
// KEYS: 1 the group's epoch copy, 2 floor, 3 sequence, 4 per-seed counts,
//       5 row-part index, 6 the namespace's seed set, 7 the namespace set
// ARGV: 1 seed (20 digits), 2 its score, 3 TTL in ms, 4 λ per ms,
//       5 the group's channel ("" = none), 6 message header start
//       ("F2 <replica> <group>"), 7 the seed field "<ns>|<seed>",
//       8 maxBucketsPerSeed, 9 the seed's buckets in other groups,
//       10 maxSeedsPerNamespace, 11 the horizon's score, 12 maxNamespaces,
//       13 the encoded namespace, 14 the epoch as expected ("" = do not
//       check), 15 "force" to write the group's epoch copy, 16 K,
//       17..16+K the row parts' members, 17+K..16+2K their rows,
//       17+2K the entries, packed (entry-args.ts): 24 bytes each,
//       little-endian uint32 key slot (1..K), uint32 column, double value,
//       double timestamp, 18+2K the group's key base: key slot i is
//       <base>:r:<member i>
// Returns {"epoch", what the copy holds ("" when missing)}, {"too_old"},
// {"limit", "buckets" | "seeds" | "namespaces", count} or
// {"ok", sequence, the seed's buckets in this group, message}; sequence 0
// and message "" when nothing changed.
const batchStart = `
if ARGV[14] ~= '' then
  local epoch = redis.call('GET', KEYS[1])
  if epoch ~= ARGV[14] then
    if ARGV[15] ~= 'force' then return {'epoch', epoch or ''} end
    redis.call('SET', KEYS[1], ARGV[14])
  end
end
local floor = redis.call('GET', KEYS[2])
if floor and ARGV[1] < floor then return {'too_old'} end
local decay = tonumber(ARGV[4])
local keyCount = tonumber(ARGV[16])
local pack, unpackAt = struct.pack, struct.unpack
local function rowKey(slot) return ARGV[18 + 2 * keyCount] .. ':r:' .. ARGV[16 + slot] end

-- The entries, unpacked once: key slot, column, value and timestamp of
-- entry i (four entries per struct.unpack call while four are left: half
-- the cost of one per call).
local packed = ARGV[17 + 2 * keyCount]
local count = #packed / 24
local eslot, ecol, evalue, ets = {}, {}, {}, {}
do
  local i, pos = 1, 1
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

-- Every bucket the call names, once, as index k into parallel arrays (no
-- Lua table per bucket: at ~0.5 µs each they were a tenth of the script):
-- its key slot, column, field name (the column's decimal form), and the
-- value it holds — stored, or the default bucket {0, 0} (a tombstone counts
-- as default). ek[i] is entry i's bucket. One HMGET per row part (in chunks,
-- so a huge batch stays within Lua's unpack limit) reads the stored values.
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
local bslot, bcol, bname, bp, bt, bheld, btouched = {}, {}, {}, {}, {}, {}, {}
local ek, index, names, ks, slots = {}, {}, {}, {}, {}
local buckets = 0
for i = 1, count do
  local slot, col = eslot[i], ecol[i]
  local byCol = index[slot]
  if not byCol then
    byCol = {}
    index[slot] = byCol
    names[slot], ks[slot] = {}, {}
    slots[#slots + 1] = slot
  end
  local k = byCol[col]
  if not k then
    buckets = buckets + 1
    k = buckets
    byCol[col] = k
    local name = string.format('%d', col)
    bslot[k], bcol[k], bname[k], bp[k], bt[k], bheld[k], btouched[k] = slot, col, name, 0, 0, false, false
    local list = names[slot]
    list[#list + 1] = name
    local keys = ks[slot]
    keys[#keys + 1] = k
  end
  ek[i] = k
end
for _, slot in ipairs(slots) do
  local values, keys = chunked('HMGET', rowKey(slot), names[slot]), ks[slot]
  for j = 1, #keys do
    local value = values[j]
    if value then
      local p, t = unpackAt('<dd', value)
      if p > 0 then
        local k = keys[j]
        bp[k], bt[k], bheld[k] = p, t, true
      end
    end
  end
end

-- order lists the buckets the call changed, in the order it first changed them.
local order = {}
local function touch(k)
  if not btouched[k] then
    btouched[k] = true
    order[#order + 1] = k
  end
end
`;

const batchEnd = `
local before = tonumber(redis.call('HGET', KEYS[4], ARGV[7]) or '0')
if #order == 0 then return {'ok', 0, before, ''} end

local ttl = ARGV[3]
local writes, slotOrder, entries, held, rowOf = {}, {}, {}, 0, {}
for _, k in ipairs(order) do
  local slot, p, t = bslot[k], bp[k], bt[k]
  local write = writes[slot]
  if not write then
    write = {}
    writes[slot] = write
    slotOrder[#slotOrder + 1] = slot
    rowOf[slot] = tonumber(ARGV[16 + keyCount + slot])
  end
  if p > 0 or bheld[k] then
    write[#write + 1] = bname[k]
    write[#write + 1] = pack('<dd', p, t)
    if p > 0 and not bheld[k] then held = held + 1 end
    if p <= 0 then held = held - 1 end
  end
  entries[#entries + 1] = pack('<I4I4dd', rowOf[slot], bcol[k], p, t)
end

local after = before + held
local total = after + tonumber(ARGV[9])
if held > 0 and total > tonumber(ARGV[8]) then return {'limit', 'buckets', tostring(total)} end
if before <= 0 and after > 0 then
  local live = redis.call('ZCOUNT', KEYS[6], ARGV[11], '+inf')
  if live >= tonumber(ARGV[10]) then return {'limit', 'seeds', tostring(live)} end
  if live == 0 then
    local spaces = redis.call('ZCOUNT', KEYS[7], ARGV[11], '+inf')
    if spaces >= tonumber(ARGV[12]) then return {'limit', 'namespaces', tostring(spaces)} end
  end
end

for _, slot in ipairs(slotOrder) do
  local key = rowKey(slot)
  if #writes[slot] > 0 then
    chunked('HSET', key, writes[slot])
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZADD', KEYS[5], ARGV[2], ARGV[16 + slot])
  end
end
if held ~= 0 then
  if after > 0 then
    redis.call('HSET', KEYS[4], ARGV[7], after)
  else
    redis.call('HDEL', KEYS[4], ARGV[7])
  end
end
if (before <= 0) ~= (after <= 0) then
  -- The seed starts or stops holding buckets in this group.
  if after > 0 then
    redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
  else
    redis.call('ZREM', KEYS[6], ARGV[1])
  end
  local latest = redis.call('ZRANGE', KEYS[6], -1, -1, 'WITHSCORES')
  if #latest == 0 then
    redis.call('ZREM', KEYS[7], ARGV[13])
  else
    redis.call('ZADD', KEYS[7], latest[2], ARGV[13])
  end
end
local sequence = redis.call('INCR', KEYS[3])
local message = ARGV[6] .. ' ' .. sequence .. ' ' .. ARGV[7] .. '\\n' .. table.concat(entries)
if ARGV[5] ~= '' then redis.call('SPUBLISH', ARGV[5], message) end
return {'ok', sequence, after, message}
`;

// Applies one validated DeltaUpdate atomically, with the arithmetic of
// @fair/state-store's SeedTable.apply line for line (docs/design.md §3): in
// order, decay then add; late, decay the delta; clamp to [0, 1]; a bucket
// that falls to 0 is the default bucket again. Seed windows and timestamp
// clamping were decided in TypeScript from the server's clock; only the
// eviction floor, which other replicas may have raised, is checked here.
// Each entry is a delta: slot, column, delta, timestamp.
//
// A bucket that falls to 0 is kept as a tombstone (prob 0, ts) until its seed
// expires: getSeed and the counts skip it, but a replica that lost messages
// and re-reads the group learns that the bucket is now 0.
export const applyScript = script(
  "apply",
  7,
  `${batchStart}
local exp = math.exp
for i = 1, count do
  local a, ts, k = evalue[i], ets[i], ek[i]
  if not (bheld[k] or btouched[k]) then
    -- The default bucket {0, 0}: every ts is in order, so prob = clamp01(a).
    if a > 0 then
      bp[k], bt[k] = a, ts
      touch(k)
    end
  else
    local p, t = bp[k], bt[k]
    if p == 0 then
      -- Fell to 0 earlier in this batch: default again.
      bp[k], bt[k] = math.max(0, a), ts
    elseif ts >= t then
      local decayed = p
      if ts ~= t and decay ~= 0 then decayed = p * exp(-decay * (ts - t)) end
      bp[k], bt[k] = clamp01(decayed + a), ts
    else
      local late = a
      if decay ~= 0 then late = a * exp(-decay * (t - ts)) end
      bp[k] = clamp01(p + late)
    end
    touch(k)
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
  7,
  `${batchStart}
for i = 1, count do
  local q, u, k = evalue[i], ets[i], ek[i]
  if not (bheld[k] or btouched[k]) then
    if q > 0 then
      bp[k], bt[k] = q, u
      touch(k)
    end
  else
    local p, t = bp[k], bt[k]
    local at = math.max(t, u)
    local kept, offered = p, q
    if at ~= t and decay ~= 0 then kept = p * math.exp(-decay * (at - t)) end
    if at ~= u and decay ~= 0 then offered = q * math.exp(-decay * (at - u)) end
    if offered > kept then
      bp[k], bt[k] = offered, at
      touch(k)
    end
  end
end
${batchEnd}`,
);

// Reads the epoch key and creates it when it is missing, in one step:
// concurrent replicas that all find it missing all get the one epoch that
// won. A created epoch is announced on the epoch channel ("E1 <value>"),
// so the other replicas re-read the key at once (epoch.ts).
//
// KEYS: 1 the epoch key
// ARGV: 1 the new epoch's value, 2 the epoch channel ("" = none)
// Returns what the key holds afterwards.
export const epochScript = script(
  "epoch",
  1,
  `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('SPUBLISH', ARGV[2], 'E1 ' .. ARGV[1]) end
return ARGV[1]
`,
);

// Evicts, in one slot group, every seed below a seed: raises the group's
// floor (so late deltas for those seeds are dropped by every replica),
// deletes their row parts and index entries, their counts, their entries
// in the namespaces' seed sets (and a namespace's entry in the namespace
// set once it holds none, else its score lowered to its latest seed).
// Row part names are derived here from the index; they share the group's
// hash tag, so the script stays on one slot.
//
// KEYS: 1 floor, 2 row-part index, 3 per-seed counts, 4 namespace set
// ARGV: 1 the group's key base, 2 seed (20 digits), 3 its score
// Returns the seed fields evicted that held buckets, and their counts:
// {field, count, field, count, …}.
export const evictScript = script(
  "evict",
  4,
  `
local floor = redis.call('GET', KEYS[1])
if (not floor) or floor < ARGV[2] then redis.call('SET', KEYS[1], ARGV[2]) end
local below = '(' .. ARGV[3]
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', below)) do
  redis.call('UNLINK', ARGV[1] .. ':r:' .. member)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', below)
local out = {}
local counts = redis.call('HGETALL', KEYS[3])
for i = 1, #counts, 2 do
  local field = counts[i]
  local digits = string.match(field, '|(%d+)$')
  if digits and string.rep('0', 20 - #digits) .. digits < ARGV[2] then
    redis.call('HDEL', KEYS[3], field)
    if tonumber(counts[i + 1]) > 0 then
      out[#out + 1] = field
      out[#out + 1] = counts[i + 1]
    end
  end
end
for _, space in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local seeds = ARGV[1] .. ':ns:' .. space
  redis.call('ZREMRANGEBYSCORE', seeds, '-inf', below)
  local latest = redis.call('ZRANGE', seeds, -1, -1, 'WITHSCORES')
  if #latest == 0 then
    redis.call('ZREM', KEYS[4], space)
  else
    redis.call('ZADD', KEYS[4], latest[2], space)
  end
end
return out
`,
);

// Reads one slot group whole, atomically: its sequence and every live row part
// (at or above the horizon), each with every field (tombstones included),
// for a replica that lost messages of the group (relay.ts).
//
// KEYS: 1 sequence, 2 row-part index
// ARGV: 1 the group's key base, 2 the horizon's score
// Returns {sequence, member, {field, value, …}, member, {…}, …}.
export const rereadScript = script(
  "reread",
  2,
  `
local out = { tonumber(redis.call('GET', KEYS[1]) or '0') }
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')) do
  out[#out + 1] = member
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. ':r:' .. member)
end
return out
`,
);

/** Every script, for the connections to define. */
export const scripts: readonly LuaScript[] = [
  applyScript,
  offerScript,
  epochScript,
  evictScript,
  rereadScript,
];
