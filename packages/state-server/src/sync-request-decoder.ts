import type {
  BucketDeltaInput,
  BucketInput,
  DeltaUpdateInput,
  StateOfferInput,
} from "@fair/state-store";

/**
 * A `SyncRequest` as a stream reads it: the protobuf-es message the Connect
 * path decodes, or the plain object {@link decodeSyncRequest} makes.
 */
export interface SyncRequestInput {
  readonly request:
    | { readonly case: "deltaUpdate"; readonly value: DeltaUpdateInput }
    | { readonly case: "stateRequest"; readonly value: { readonly seed: bigint } }
    | { readonly case: "stateOffer"; readonly value: StateOfferInput }
    | { readonly case: undefined; readonly value?: undefined };
}

/** Bytes that are not a `SyncRequest` in the protobuf wire format. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

interface MutableDeltaUpdate {
  seed: bigint;
  deltas: BucketDeltaInput[];
}

interface MutableStateOffer {
  seed: bigint;
  buckets: BucketInput[];
}

/**
 * Decodes a serialized `fair.state.v1.SyncRequest` without message objects
 * or a bigint per field: uint64 ids and timestamps come out as numbers
 * (exact below 2^53; larger ones round, and the store refuses them as out
 * of range either way), the seed as an exact bigint. It reads what
 * protobuf-es reads: fields in any order, a repeated field's last scalar
 * wins, a message field seen twice merges, and unknown fields are skipped.
 *
 * Why by hand: decoding with protobuf-es (`fromBinary`, its reflection and a
 * bigint per uint64) was ~30% of the server's busy time under 8 clients
 * (bench/README.md, "Where the time goes").
 *
 * @throws DecodeError naming what is wrong and where.
 */
export function decodeSyncRequest(bytes: Uint8Array): SyncRequestInput {
  const reader = new Reader(bytes);
  // At most one of these is set: a oneof member replaces another, and the
  // same member seen twice merges.
  let update: MutableDeltaUpdate | undefined;
  let stateSeed: bigint | undefined;
  let offer: MutableStateOffer | undefined;
  while (reader.more()) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === LEN) {
      stateSeed = offer = undefined;
      update ??= { seed: 0n, deltas: [] };
      readDeltaUpdate(reader, reader.lengthEnd(), update);
    } else if (field === 2 && wireType === LEN) {
      update = offer = undefined;
      stateSeed = readStateRequest(reader, reader.lengthEnd(), stateSeed ?? 0n);
    } else if (field === 3 && wireType === LEN) {
      update = stateSeed = undefined;
      offer ??= { seed: 0n, buckets: [] };
      readStateOffer(reader, reader.lengthEnd(), offer);
    } else {
      reader.skip(wireType, field);
    }
  }
  if (update !== undefined) return { request: { case: "deltaUpdate", value: update } };
  if (stateSeed !== undefined)
    return { request: { case: "stateRequest", value: { seed: stateSeed } } };
  if (offer !== undefined) return { request: { case: "stateOffer", value: offer } };
  return { request: { case: undefined } };
}

function readDeltaUpdate(reader: Reader, end: number, update: MutableDeltaUpdate): void {
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === VARINT) update.seed = reader.uint64();
    else if (field === 2 && wireType === LEN)
      update.deltas.push(readDelta(reader, reader.lengthEnd()));
    else reader.skip(wireType, field);
  }
  reader.expectEnd(end, "delta_update");
}

function readDelta(reader: Reader, end: number): BucketDeltaInput {
  let rowId = 0;
  let colId = 0;
  let deltaProb = 0;
  let lastUpdateTimeMs = 0;
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === VARINT) rowId = reader.uint64AsNumber();
    else if (field === 2 && wireType === VARINT) colId = reader.uint64AsNumber();
    else if (field === 3 && wireType === I64) deltaProb = reader.double();
    else if (field === 4 && wireType === VARINT) lastUpdateTimeMs = reader.uint64AsNumber();
    else reader.skip(wireType, field);
  }
  reader.expectEnd(end, "delta_update.deltas");
  return { rowId, colId, deltaProb, lastUpdateTimeMs };
}

function readStateOffer(reader: Reader, end: number, offer: MutableStateOffer): void {
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === VARINT) offer.seed = reader.uint64();
    else if (field === 2 && wireType === LEN)
      offer.buckets.push(readBucket(reader, reader.lengthEnd()));
    else reader.skip(wireType, field);
  }
  reader.expectEnd(end, "state_offer");
}

function readBucket(reader: Reader, end: number): BucketInput {
  let rowId = 0;
  let colId = 0;
  let prob = 0;
  let lastUpdateTimeMs = 0;
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === VARINT) rowId = reader.uint64AsNumber();
    else if (field === 2 && wireType === VARINT) colId = reader.uint64AsNumber();
    else if (field === 3 && wireType === I64) prob = reader.double();
    else if (field === 4 && wireType === VARINT) lastUpdateTimeMs = reader.uint64AsNumber();
    else reader.skip(wireType, field);
  }
  reader.expectEnd(end, "state_offer.buckets");
  return { rowId, colId, prob, lastUpdateTimeMs };
}

function readStateRequest(reader: Reader, end: number, seed: bigint): bigint {
  let result = seed;
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === VARINT) result = reader.uint64();
    else reader.skip(wireType, field);
  }
  reader.expectEnd(end, "state_request");
  return result;
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const START_GROUP = 3;
const I32 = 5;

/** A cursor over protobuf wire format that checks every length against the bytes it has. */
class Reader {
  pos = 0;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  more(): boolean {
    return this.pos < this.#bytes.length;
  }

  tag(): [field: number, wireType: number] {
    const tag = this.uint64AsNumber();
    const field = Math.floor(tag / 8);
    if (field < 1 || field > 536_870_911) throw this.#error(`invalid field number ${field}`);
    return [field, tag % 8];
  }

  /** Reads a length prefix; returns where the field ends. */
  lengthEnd(): number {
    const length = this.uint64AsNumber();
    const end = this.pos + length;
    if (end > this.#bytes.length) {
      throw this.#error(`a length of ${length} runs past the end of the message`);
    }
    return end;
  }

  /** A varint as a number: exact below 2^53, rounded to the nearest double above. */
  uint64AsNumber(): number {
    const bytes = this.#bytes;
    const start = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= bytes.length) throw this.#error("a varint runs past the end of the message");
      const byte = bytes[this.pos++] as number;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        return result <= Number.MAX_SAFE_INTEGER ? result : Number(this.#exact(start));
      }
      scale *= 128;
    }
    throw this.#error("a varint longer than 10 bytes");
  }

  /** A varint as an exact uint64. */
  uint64(): bigint {
    const start = this.pos;
    const approx = this.uint64AsNumber();
    return approx <= Number.MAX_SAFE_INTEGER ? BigInt(approx) : this.#exact(start);
  }

  /** The varint from `start` to the cursor, exactly, truncated to 64 bits as protobuf readers do. */
  #exact(start: number): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = start; i < this.pos; i++) {
      result |= BigInt((this.#bytes[i] as number) & 0x7f) << shift;
      shift += 7n;
    }
    return BigInt.asUintN(64, result);
  }

  double(): number {
    if (this.pos + 8 > this.#bytes.length)
      throw this.#error("a double runs past the end of the message");
    const value = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return value;
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case VARINT:
        this.uint64AsNumber();
        return;
      case I64:
        this.#advance(8);
        return;
      case LEN:
        this.pos = this.lengthEnd();
        return;
      case I32:
        this.#advance(4);
        return;
      case START_GROUP:
        throw this.#error(`field ${field} is a group, which proto3 messages do not have`);
      default:
        throw this.#error(`field ${field} has invalid wire type ${wireType}`);
    }
  }

  expectEnd(end: number, what: string): void {
    if (this.pos !== end) throw this.#error(`${what} overruns its length`);
  }

  #advance(bytes: number): void {
    if (this.pos + bytes > this.#bytes.length)
      throw this.#error("a field runs past the end of the message");
    this.pos += bytes;
  }

  #error(detail: string): DecodeError {
    return new DecodeError(`not a valid SyncRequest: ${detail} (at byte ${this.pos})`);
  }
}
