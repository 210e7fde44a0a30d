/**
 * Reads just what the bench needs from an encoded `SyncResponse` — the
 * seed, the full-state flags and each bucket's (row, col, prob, ts) —
 * walking the protobuf wire format directly instead of building message
 * objects: decoding every broadcast into objects would make the receiving
 * side, not the server, the bottleneck at high fan-out.
 *
 * Field numbers are those of fair.state.v1 (SyncResponse: seed 1, buckets 2,
 * full_state 3, full_state_last 4; Bucket: row_id 1, col_id 2, prob 3,
 * last_update_time_ms 4). Unknown fields are skipped.
 */
export interface WalkedResponse {
  seed: bigint;
  fullState: boolean;
  fullStateLast: boolean;
  buckets: number;
}

export type BucketVisitor = (rowId: number, colId: number, prob: number, timeMs: number) => void;

/** Walks one `SyncResponse`; without `onBucket`, buckets are counted and skipped unread. */
export function walkSyncResponse(bytes: Uint8Array, onBucket?: BucketVisitor): WalkedResponse {
  const reader = new WireReader(bytes);
  const out: WalkedResponse = { seed: 0n, fullState: false, fullStateLast: false, buckets: 0 };
  while (!reader.done(bytes.length)) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 0) out.seed = reader.varint64();
    else if (field === 3 && wire === 0) out.fullState = reader.varint() !== 0;
    else if (field === 4 && wire === 0) out.fullStateLast = reader.varint() !== 0;
    else if (field === 2 && wire === 2) {
      const stop = reader.varint() + reader.pos;
      if (onBucket === undefined) {
        reader.pos = stop;
        out.buckets++;
        continue;
      }
      let row = 0;
      let col = 0;
      let prob = 0;
      let ts = 0;
      while (!reader.done(stop)) {
        const inner = reader.varint();
        const f = Math.floor(inner / 8);
        if (f === 3 && (inner & 7) === 1) prob = reader.double();
        else if (f === 1 && (inner & 7) === 0) row = reader.varint();
        else if (f === 2 && (inner & 7) === 0) col = reader.varint();
        else if (f === 4 && (inner & 7) === 0) ts = reader.varint();
        else reader.skip(inner & 7);
      }
      out.buckets++;
      onBucket(row, col, prob, ts);
    } else {
      reader.skip(wire);
    }
  }
  return out;
}

class WireReader {
  pos = 0;
  readonly #view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  done(end: number): boolean {
    return this.pos >= end;
  }

  /** A varint below 2^53: ids, millisecond timestamps, lengths, flags. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = this.bytes[this.pos++] ?? 0;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
  }

  /** A full uint64 varint (seeds), kept exact. */
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.bytes[this.pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      shift += 7n;
    }
  }

  double(): number {
    const value = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return value;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else if (wire === 2) {
      const length = this.varint(); // read first: `pos += varint()` would add to the old pos
      this.pos += length;
    } else throw new Error(`cannot skip wire type ${wire} in a SyncResponse`);
  }
}
