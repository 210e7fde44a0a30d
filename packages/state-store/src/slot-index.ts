// A seed table's index from bucket key (`row × maxCols + col`, an integer
// below 2^53) to its slot in the table's columns: open addressing with
// linear probing over typed arrays, one table while small, 256 once past
// 2^14 keys.
//
// Why not a Map<number, number>: the keys are mostly above 2^31, so a Map
// holds each as a heap number, and at maxBucketsPerSeed (2^22) keys the
// garbage collector's pauses and the Map's own growth block the event loop.
// Measured on a 2-core Xeon (Node 20), filling one index to 2^22 keys in
// slices of 16 384 with a turn of the event loop between them: a Map blocks
// for 170 ms (its growth to 2^22 entries is one rehash); 256 Maps, 80–170 ms
// (major GC of 4M heap numbers); these typed arrays hold no object per key,
// so GC has nothing to trace, and a shard's growth moves at most ~16k keys —
// bench/event-loop.ts measures the longest step of a whole restore.
//
// The shards are picked by the top bits of a seeded hash (murmur3's
// finaliser over the key's two halves), random per index, so that a client
// choosing keys cannot crowd one shard or one probe run. Which shard or
// position a key takes is never observable, only how long an insertion takes.

const shardBits = 8;
const shardCount = 1 << shardBits;
/** Past this many keys the one table splits into shards. */
const shardThreshold = 2 ** 14;
const initialCapacity = 4;

/**
 * One open-addressing table: `keys` holds key + 1 (0 marks an empty cell),
 * `slots` the slot (8 + 4 bytes a cell: one Float64Array of both would be
 * 16). It doubles when it holds more than `load` × capacity keys.
 */
interface Cells {
  keys: Float64Array;
  slots: Int32Array;
  count: number;
  readonly load: number;
  limit: number;
}

function cells(capacity: number, load: number): Cells {
  const keys = new Float64Array(capacity);
  return {
    keys,
    slots: new Int32Array(capacity),
    count: 0,
    load,
    limit: Math.floor(capacity * load),
  };
}

// The shards fill at the same pace, so with one load factor they would all
// double within a few thousand insertions of each other — every key moved
// at once, as one big table would (measured: a 35 ms step among 16 384
// insertions near 3M keys). Each shard has its own, from 0.5 to 0.85, which
// spreads their growth over a 1.7-fold range of sizes (longest step of the
// same fill: under 9 ms). The one table before the split stays at most half
// full, so a small seed's lookups — the common case — probe little.
function shardLoad(shard: number): number {
  return 0.5 + (0.35 * shard) / (shardCount - 1);
}

/** Bucket key → slot, for one seed table. */
export class SlotIndex {
  /** One table, until the index holds `shardThreshold` keys; then `shardCount` of them. */
  #shards: Cells[] = [cells(initialCapacity, 0.5)];
  #size = 0;
  readonly #seed = (Math.random() * 2 ** 32) | 0;

  /** Keys held. */
  get size(): number {
    return this.#size;
  }

  /** The slot of `key`, or `undefined`. */
  get(key: number): number | undefined {
    const hash = this.#hash(key);
    const { keys, slots } = this.#shardOf(hash);
    const mask = keys.length - 1;
    const stored = key + 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const at = keys[i] as number;
      if (at === stored) return slots[i];
      if (at === 0) return undefined;
    }
  }

  /** Whether `key` is held. */
  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds `key` → `slot`; `key` must not be held. */
  add(key: number, slot: number): void {
    const hash = this.#hash(key);
    const shard = this.#shardOf(hash);
    insert(shard, hash, key + 1, slot);
    this.#size++;
    if (shard.count > shard.limit) this.#grow(shard);
    if (this.#shards.length === 1 && this.#size > shardThreshold) this.#split();
  }

  /** Removes `key`, which must be held. */
  delete(key: number): void {
    const hash = this.#hash(key);
    const shard = this.#shardOf(hash);
    const { keys, slots } = shard;
    const mask = keys.length - 1;
    const stored = key + 1;
    let hole = hash & mask;
    while (keys[hole] !== stored) {
      if (keys[hole] === 0) return;
      hole = (hole + 1) & mask;
    }
    // Backward-shift deletion: move later keys of the probe run into the
    // hole when their home is at or before it, so no tombstones are needed.
    for (let j = (hole + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const moved = keys[j] as number;
      const home = this.#hash(moved - 1) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys[hole] = moved;
        slots[hole] = slots[j] as number;
        hole = j;
      }
    }
    keys[hole] = 0;
    shard.count--;
    this.#size--;
  }

  #shardOf(hash: number): Cells {
    const shards = this.#shards;
    return (shards.length === 1 ? shards[0] : shards[hash >>> (32 - shardBits)]) as Cells;
  }

  #grow(shard: Cells): void {
    const { keys, slots } = shard;
    const grown = cells(keys.length * 2, shard.load);
    for (let i = 0; i < keys.length; i++) {
      const stored = keys[i] as number;
      if (stored !== 0) insert(grown, this.#hash(stored - 1), stored, slots[i] as number);
    }
    shard.keys = grown.keys;
    shard.slots = grown.slots;
    shard.limit = grown.limit;
  }

  #split(): void {
    const only = this.#shards[0] as Cells;
    // Each shard starts about half full with its share.
    const capacity = Math.max(16, 2 ** Math.ceil(Math.log2((only.count * 2) / shardCount)));
    const shards = Array.from({ length: shardCount }, (_, i) => cells(capacity, shardLoad(i)));
    for (let i = 0; i < only.keys.length; i++) {
      const stored = only.keys[i] as number;
      if (stored === 0) continue;
      const hash = this.#hash(stored - 1);
      insert(shards[hash >>> (32 - shardBits)] as Cells, hash, stored, only.slots[i] as number);
    }
    this.#shards = shards;
  }

  // murmur3's 32-bit finaliser over the key's two halves (× 2^−32 is exact), seeded.
  #hash(key: number): number {
    let h = Math.imul((key >>> 0) ^ this.#seed, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ ((key * 2.3283064365386963e-10) >>> 0);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
}

function insert(shard: Cells, hash: number, stored: number, slot: number): void {
  const { keys, slots } = shard;
  const mask = keys.length - 1;
  let i = hash & mask;
  while (keys[i] !== 0) i = (i + 1) & mask;
  keys[i] = stored;
  slots[i] = slot;
  shard.count++;
}
