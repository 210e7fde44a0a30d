// Protobuf's binary wire format, written by hand for the snapshot encoder:
// protobuf-es would first build a message of plain arrays and a bigint per
// timestamp, and encode it in one call (for 2^22 buckets, seconds of one
// synchronous step). Only what a `StoreSnapshot` needs is here: varints of
// integers below 2^53 (and of a uint64 seed), doubles, length-delimited
// bytes.

/** Bytes a varint of `value` (an integer in [0, 2^53)) takes. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  if (value < 0x800000000) return 5;
  if (value < 0x40000000000) return 6;
  if (value < 0x2000000000000) return 7;
  return 8;
}

/** Bytes a varint of `value` (a uint64) takes. */
export function bigVarintSize(value: bigint): number {
  let size = 1;
  for (let rest = value >> 7n; rest > 0n; rest >>= 7n) size++;
  return size;
}

/**
 * A growing buffer of wire-format bytes. `take()` hands out what was written
 * so far and starts afresh, so every chunk handed out is the caller's to keep.
 */
export class WireWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(capacity = 1 << 16) {
    this.#bytes = new Uint8Array(capacity);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Bytes written since the last `take()`. */
  get length(): number {
    return this.#pos;
  }

  /** Makes room for `n` more bytes; every write below needs it first. */
  reserve(n: number): void {
    const needed = this.#pos + n;
    if (needed <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#bytes.length * 2));
    grown.set(this.#bytes.subarray(0, this.#pos));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** One byte, such as a field's tag. */
  byte(value: number): void {
    this.#bytes[this.#pos++] = value;
  }

  /** A varint of an integer in [0, 2^53). */
  varint(value: number): void {
    const bytes = this.#bytes;
    let pos = this.#pos;
    if (value >= 0x100000000) {
      // Past 32 bits the bitwise operators no longer apply: the low 28 bits
      // go out first, then the rest (below 2^25) as one more small varint.
      const low = value >>> 0;
      for (let i = 0; i < 4; i++) bytes[pos++] = ((low >>> (7 * i)) & 0x7f) | 0x80;
      value = (low >>> 28) | (((value - low) / 0x100000000) << 4);
    }
    while (value > 0x7f) {
      bytes[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    bytes[pos++] = value;
    this.#pos = pos;
  }

  /** A varint of a uint64. */
  bigVarint(value: bigint): void {
    let rest = value;
    while (rest > 0x7fn) {
      this.#bytes[this.#pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.#bytes[this.#pos++] = Number(rest);
  }

  /** A double, little-endian. */
  double(value: number): void {
    this.#view.setFloat64(this.#pos, value, true);
    this.#pos += 8;
  }

  /** Raw bytes. */
  bytes(value: Uint8Array): void {
    this.#bytes.set(value, this.#pos);
    this.#pos += value.length;
  }

  /** Everything written since the last `take()`, as a chunk of its own; starts a new buffer. */
  take(): Uint8Array {
    const out = this.#bytes.subarray(0, this.#pos);
    this.#bytes = new Uint8Array(Math.max(1 << 16, this.#bytes.length));
    this.#view = new DataView(this.#bytes.buffer);
    this.#pos = 0;
    return out;
  }
}
