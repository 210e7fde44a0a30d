import { StoreError } from "./errors.js";
import type { SnapshotBuilder } from "./snapshot-builder.js";
import { WireReader, wireType } from "./wire-reader.js";

// One `SeedSnapshot` entry of a snapshot, a "part": decoded by hand into
// typed-array columns, checked against the store's options, and loaded into
// the builder's table. In format 2 a part holds at most a page of buckets
// (frozen-columns.ts); in format 1 it is a whole seed, up to 2^22 buckets,
// so the work pauses every `slice` values either way.

const maxSafeTime = Number.MAX_SAFE_INTEGER;
const columnBits = 13;
const columnPage = 1 << columnBits;
const columnMask = columnPage - 1;

function malformed(field: string, problem: string): StoreError {
  return new StoreError("snapshot_malformed", field, problem);
}

// One id or timestamp: row_ids and col_ids are uint32 (a longer varint
// keeps its low 32 bits, as in every protobuf reader), last_update_times_ms
// a uint64 (exact, or noted in `huge` when past 2^53).
function readId(
  reader: WireReader,
  number: 3 | 4 | 6,
  rows: Column,
  cols: Column,
  times: Column,
  huge: Map<number, bigint>,
): void {
  const start = reader.pos;
  const value = reader.varint();
  if (number === 6) {
    if (value > maxSafeTime) huge.set(times.length, reader.bigVarintAt(start));
    times.push(value);
  } else {
    (number === 3 ? rows : cols).push(value >>> 0);
  }
}

/**
 * A column of numbers that grows as it is decoded, in pages of 8 192: a
 * format-1 part holds a whole seed, and one array doubling to 2^22 values
 * would copy 32 MiB in one step.
 */
class Column {
  readonly #pages: Float64Array[] = [];
  length = 0;

  push(value: number): void {
    const at = this.length & columnMask;
    if (at === 0) this.#pages.push(new Float64Array(this.length === 0 ? 64 : columnPage));
    let page = this.#pages[this.#pages.length - 1] as Float64Array;
    if (at === page.length) {
      // Only the first page starts small; it grows to a full page.
      const grown = new Float64Array(Math.min(columnPage, page.length * 4));
      grown.set(page);
      this.#pages[this.#pages.length - 1] = grown;
      page = grown;
    }
    page[at] = value;
    this.length++;
  }

  /** Value `index`, below `length`. */
  at(index: number): number {
    return (this.#pages[index >>> columnBits] as Float64Array)[index & columnMask] as number;
  }
}

/**
 * Decodes part `index` of a snapshot from `bytes` into `builder`, yielding
 * `"pause"` after every `slice` values read or buckets loaded. Throws a
 * `snapshot_malformed` `StoreError` naming the field (`seeds[3].probs[7]`).
 *
 * @param continued - whether a part may carry on the seed of the part before (format 2)
 */
export function* decodePart(
  bytes: Uint8Array,
  index: number,
  builder: SnapshotBuilder,
  continued: boolean,
  slice: number,
): Generator<"pause", void, unknown> {
  const field = `seeds[${index}]`;
  const reader = new WireReader(bytes, field);
  let namespace = "";
  let seed = 0n;
  const rows = new Column();
  const cols = new Column();
  const probs = new Column();
  const times = new Column();
  // Timestamps past 2^53, by index, exactly: refused below, named in the message.
  const hugeTimes = new Map<number, bigint>();
  let work = 0;
  while (reader.pos < reader.end) {
    const tag = reader.varint();
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    if (number === 1 && wire === wireType.delimited) {
      namespace = reader.string();
    } else if (number === 2 && wire === wireType.varint) {
      seed = reader.bigVarint();
    } else if ((number === 3 || number === 4 || number === 6) && wire === wireType.varint) {
      readId(reader, number, rows, cols, times, hugeTimes);
    } else if ((number === 3 || number === 4 || number === 6) && wire === wireType.delimited) {
      const end = reader.delimited();
      while (reader.pos < end) {
        readId(reader, number, rows, cols, times, hugeTimes);
        if (++work >= slice) {
          work = 0;
          yield "pause";
        }
      }
      if (reader.pos !== end) throw reader.malformed("has a packed field that overruns its length");
    } else if (number === 5 && wire === wireType.bit64) {
      probs.push(reader.double());
    } else if (number === 5 && wire === wireType.delimited) {
      const end = reader.delimited();
      if ((end - reader.pos) % 8 !== 0) throw malformed(`${field}.probs`, "holds a partial double");
      while (reader.pos < end) {
        probs.push(reader.double());
        if (++work >= slice) {
          work = 0;
          yield "pause";
        }
      }
    } else {
      reader.skip(wire);
    }
  }

  const { windowBig, windowMs, maxRows, maxCols } = builder.options;
  if (seed % windowBig !== 0n) {
    throw malformed(
      `${field}.seed`,
      `${seed} is not a multiple of windowMs ${windowMs}; was the snapshot written with another window?`,
    );
  }
  const table = builder.tableFor(namespace, seed, field, continued);
  const length = rows.length;
  for (const [name, column] of [
    ["col_ids", cols],
    ["probs", probs],
    ["last_update_times_ms", times],
  ] as const) {
    if (column.length !== length) {
      throw malformed(`${field}.${name}`, `has ${column.length} entries, row_ids has ${length}`);
    }
  }
  for (let j = 0; j < length; j++) {
    const row = rows.at(j);
    const col = cols.at(j);
    const prob = probs.at(j);
    const time = times.at(j);
    if (row >= maxRows) {
      throw malformed(`${field}.row_ids[${j}]`, `${row} ≥ maxRows ${maxRows}`);
    }
    if (col >= maxCols) {
      throw malformed(`${field}.col_ids[${j}]`, `${col} ≥ maxCols ${maxCols}`);
    }
    if (!(prob >= 0 && prob <= 1)) {
      throw malformed(`${field}.probs[${j}]`, `must be in [0, 1], got ${prob}`);
    }
    if (time > maxSafeTime) {
      throw malformed(
        `${field}.last_update_times_ms[${j}]`,
        `must be below 2^53, got ${hugeTimes.get(j)}`,
      );
    }
    const key = row * maxCols + col;
    if (table.has(key)) {
      throw malformed(`${field}.row_ids[${j}]`, `repeats bucket (${row}, ${col})`);
    }
    table.load(key, prob, time);
    if (++work >= slice) {
      work = 0;
      yield "pause";
    }
  }
}
