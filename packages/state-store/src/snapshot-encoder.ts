import { type FrozenColumns, pageSlots } from "./frozen-columns.js";
import { bigVarintSize, varintSize, WireWriter } from "./wire-writer.js";

/** The `format_version` this package writes. */
export const snapshotFormatVersion = 2;

/** One (namespace, seed) to write, its columns frozen at the snapshot's instant. */
export interface FrozenSeed {
  readonly namespace: string;
  readonly seed: bigint;
  readonly columns: FrozenColumns;
}

// Field tags (number << 3 | wire type) of StoreSnapshot and SeedSnapshot.
const tagFormatVersion = 0x08;
const tagTakenAt = 0x10;
const tagSeeds = 0x1a;
const tagEpoch = 0x22;
const tagNamespace = 0x0a;
const tagSeed = 0x10;
const tagRowIds = 0x1a;
const tagColIds = 0x22;
const tagProbs = 0x2a;
const tagTimes = 0x32;
/** The most bytes a part's tag and every length prefix, seed and namespace header take. */
const partOverhead = 64;

const utf8 = new TextEncoder();
const maxUint64 = 2n ** 64n - 1n;

/**
 * Encodes `seeds` as a `StoreSnapshot` of format 2, one part
 * (`SeedSnapshot` entry) per page of a seed's slots that holds buckets,
 * yielding a chunk each time about `slice` slots have been read — so each
 * chunk is one bounded step of work. Concatenated, the chunks are the
 * snapshot. Pages are read in order, each in one step, and marked done, so
 * the store may go on writing between steps (frozen-columns.ts).
 */
export function* encodeSnapshot(
  seeds: readonly FrozenSeed[],
  takenAtMs: number,
  epoch: string,
  maxCols: number,
  slice: number,
): Generator<Uint8Array, void, undefined> {
  const out = new WireWriter();
  const epochBytes = utf8.encode(epoch);
  out.reserve(32 + epochBytes.length);
  out.byte(tagFormatVersion);
  out.varint(snapshotFormatVersion);
  out.byte(tagTakenAt);
  out.bigVarint(toUint64(takenAtMs));
  if (epochBytes.length > 0) {
    out.byte(tagEpoch);
    out.varint(epochBytes.length);
    out.bytes(epochBytes);
  }
  // One page's buckets, gathered before its lengths can be written.
  const rows = new Float64Array(pageSlots);
  const cols = new Float64Array(pageSlots);
  const probs = new Float64Array(pageSlots);
  const times = new Float64Array(pageSlots);
  let work = 0;
  for (const { namespace, seed, columns } of seeds) {
    const name = utf8.encode(namespace);
    for (let page = 0; page < columns.pages; page++) {
      const { cells, from, to, saved } = columns.page(page);
      let count = 0;
      let rowBytes = 0;
      let colBytes = 0;
      let timeBytes = 0;
      for (let slot = from; slot < to; slot++) {
        const before = saved?.get(slot);
        const prob = before === undefined ? (cells[3 * slot + 1] as number) : before[1];
        if (prob > 0) {
          const key = before === undefined ? (cells[3 * slot] as number) : before[0];
          const row = Math.floor(key / maxCols);
          const col = key - row * maxCols;
          const time = before === undefined ? (cells[3 * slot + 2] as number) : before[2];
          rows[count] = row;
          cols[count] = col;
          probs[count] = prob;
          times[count] = time;
          rowBytes += varintSize(row);
          colBytes += varintSize(col);
          timeBytes += varintSize(time);
          count++;
        }
      }
      columns.done(page);
      work += to - from;
      if (count > 0) {
        const probBytes = count * 8;
        const length =
          (name.length > 0 ? 1 + varintSize(name.length) + name.length : 0) +
          (seed > 0n ? 1 + bigVarintSize(seed) : 0) +
          packedSize(rowBytes) +
          packedSize(colBytes) +
          packedSize(probBytes) +
          packedSize(timeBytes);
        out.reserve(length + partOverhead);
        out.byte(tagSeeds);
        out.varint(length);
        if (name.length > 0) {
          out.byte(tagNamespace);
          out.varint(name.length);
          out.bytes(name);
        }
        if (seed > 0n) {
          out.byte(tagSeed);
          out.bigVarint(seed);
        }
        out.byte(tagRowIds);
        out.varint(rowBytes);
        for (let i = 0; i < count; i++) out.varint(rows[i] as number);
        out.byte(tagColIds);
        out.varint(colBytes);
        for (let i = 0; i < count; i++) out.varint(cols[i] as number);
        out.byte(tagProbs);
        out.varint(probBytes);
        for (let i = 0; i < count; i++) out.double(probs[i] as number);
        out.byte(tagTimes);
        out.varint(timeBytes);
        for (let i = 0; i < count; i++) out.varint(times[i] as number);
        work += count * 4 + partOverhead;
      }
      if (work >= slice) {
        work = 0;
        yield out.take();
      }
    }
  }
  if (out.length > 0) yield out.take();
}

function packedSize(bytes: number): number {
  return 1 + varintSize(bytes) + bytes;
}

// A clock reading as a uint64, saturating rather than failing the snapshot.
function toUint64(ms: number): bigint {
  const value = BigInt(Math.max(0, Math.floor(ms)));
  return value > maxUint64 ? maxUint64 : value;
}
