import { StoreError } from "./errors.js";

// Protobuf's binary wire format, read by hand for the snapshot decoder (see
// wire-writer.ts for why): varints as exact numbers below 2^53 or as
// bigints, doubles, length-delimited bytes, and skipping unknown fields the
// way every protobuf reader does.

/** A field's wire types: varint, 64-bit, length-delimited, 32-bit. */
export const wireType = { varint: 0, bit64: 1, delimited: 2, bit32: 5 } as const;

const utf8 = new TextDecoder();

/** Reads wire-format bytes from `pos` to `end`; throws `snapshot_malformed` on what does not decode. */
export class WireReader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;
  readonly #view: DataView;
  readonly #field: string;

  /** @param field - what a refusal names, e.g. `bytes` or `seeds[3]` */
  constructor(bytes: Uint8Array, field: string, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#field = field;
  }

  /**
   * A varint as a number: exact below 2^53; at or above it, some number at
   * least 2^53 (read it again with `bigVarintAt` for the exact value).
   */
  varint(): number {
    const bytes = this.bytes;
    let pos = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && pos < this.end; i++) {
      const byte = bytes[pos++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    throw this.malformed(pos < this.end ? "holds a varint longer than 10 bytes" : "ends mid-field");
  }

  /** The varint starting at `pos`, exactly. */
  bigVarintAt(pos: number): bigint {
    let value = 0n;
    let shift = 0n;
    for (let i = 0; i < 10 && pos < this.end; i++) {
      const byte = this.bytes[pos++] as number;
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value & 0xffffffffffffffffn;
      shift += 7n;
    }
    throw this.malformed("ends mid-field");
  }

  /** A varint as a uint64, exactly. */
  bigVarint(): bigint {
    const start = this.pos;
    this.varint();
    return this.bigVarintAt(start);
  }

  /** A double, little-endian. */
  double(): number {
    if (this.pos + 8 > this.end) throw this.malformed("ends mid-field");
    const value = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return value;
  }

  /** A length prefix; returns where the delimited bytes end. */
  delimited(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw this.malformed("ends mid-field");
    return end;
  }

  /** A length-delimited UTF-8 string (invalid sequences become U+FFFD, as protobuf-es reads them). */
  string(): string {
    const end = this.delimited();
    const value = utf8.decode(this.bytes.subarray(this.pos, end));
    this.pos = end;
    return value;
  }

  /** Skips the value of a field of wire type `wire`, as a reader does with fields it does not know. */
  skip(wire: number): void {
    if (wire === wireType.varint) this.varint();
    else if (wire === wireType.bit64) this.#advance(8);
    else if (wire === wireType.delimited) this.pos = this.delimited();
    else if (wire === wireType.bit32) this.#advance(4);
    else throw this.malformed(`has a field of wire type ${wire}, which no snapshot uses`);
  }

  /** A `snapshot_malformed` refusal naming this reader's field. */
  malformed(problem: string): StoreError {
    return new StoreError("snapshot_malformed", this.#field, problem);
  }

  #advance(n: number): void {
    if (this.pos + n > this.end) throw this.malformed("ends mid-field");
    this.pos += n;
  }
}
