import { StoreError } from "./errors.js";
import type { SnapshotBuilder } from "./snapshot-builder.js";
import { decodePart } from "./snapshot-part.js";
import { WireReader, wireType } from "./wire-reader.js";

const utf8 = new TextDecoder();

/** The `format_version`s this package reads: 1 (one part per seed) and 2 (parts of a page). */
export const readableFormatVersions: readonly number[] = [1, 2];

/**
 * What the decoder asks of whoever drives it: `"input"` — send the next
 * chunk of the snapshot, or `undefined` at its end; `"pause"` — a slice of
 * work is done, let the event loop turn, then send nothing.
 */
export type DecoderRequest = "input" | "pause";

/** The decoder as a coroutine (see {@link DecoderRequest}). */
export type SnapshotDecoder = Generator<DecoderRequest, void, Uint8Array | undefined>;

const empty = new Uint8Array(0);
/** Bytes copied per step when a field spans chunks. */
const copySlice = 1 << 22;

/** The bytes received and not yet read: a queue of chunks. */
class InputQueue {
  readonly #chunks: Uint8Array[] = [];
  #first = 0;
  #offset = 0;
  available = 0;
  ended = false;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.available += chunk.length;
  }

  /** The next `n` bytes (at most `available`), without reading them: a view, or a copy when they span chunks. */
  peek(n: number): Uint8Array {
    const head = this.#chunks[this.#first];
    if (head !== undefined && head.length - this.#offset >= n) {
      return head.subarray(this.#offset, this.#offset + n);
    }
    const out = new Uint8Array(Math.min(n, this.available));
    let filled = 0;
    for (let i = this.#first; filled < out.length; i++) {
      const chunk = this.#chunks[i] as Uint8Array;
      const from = i === this.#first ? this.#offset : 0;
      const part = chunk.subarray(from, from + out.length - filled);
      out.set(part, filled);
      filled += part.length;
    }
    return out;
  }

  /** Reads past the next `n` bytes (at most `available`). */
  skip(n: number): void {
    this.available -= n;
    while (n > 0) {
      const chunk = this.#chunks[this.#first] as Uint8Array;
      const left = chunk.length - this.#offset;
      if (n < left) {
        this.#offset += n;
        return;
      }
      n -= left;
      // Let go of a chunk once read; compact the list now and then.
      this.#chunks[this.#first++] = empty;
      this.#offset = 0;
    }
    if (this.#first >= 64) {
      this.#chunks.splice(0, this.#first);
      this.#first = 0;
    }
  }

  /**
   * Reads the next `n` bytes (at most `available`): a view when they sit in
   * one chunk; otherwise copied, `copySlice` bytes per step, pausing between
   * (a format-1 part of 2^22 buckets is one 70 MiB field).
   */
  *take(n: number): Generator<"pause", Uint8Array, unknown> {
    const head = this.#chunks[this.#first];
    if (head !== undefined && head.length - this.#offset >= n) {
      const out = head.subarray(this.#offset, this.#offset + n);
      this.skip(n);
      return out;
    }
    const out = new Uint8Array(n);
    for (let filled = 0; filled < n; ) {
      const step = Math.min(copySlice, n - filled);
      out.set(this.peek(step), filled);
      this.skip(step);
      filled += step;
      if (filled < n) yield "pause";
    }
    return out;
  }
}

/**
 * Reads a `StoreSnapshot` of format 1 or 2 from chunks as they come, into
 * `builder`: the top-level fields as they arrive, each part (`SeedSnapshot`
 * entry) once all its bytes are in, and within a part a pause every `slice`
 * values. Throws a `StoreError` (`snapshot_version`, `snapshot_malformed`)
 * at the first problem. Drive it with `runDecoder` or `runDecoderSync`.
 *
 * Format 2 (what this package writes) differs from format 1 only in that
 * the buckets of one seed may be split over consecutive entries; the file is
 * a valid `StoreSnapshot` message either way.
 */
export function* snapshotDecoder(builder: SnapshotBuilder, slice: number): SnapshotDecoder {
  const input = new InputQueue();
  // Waits until `n` bytes are in, or the input has ended.
  function* fill(n: number): SnapshotDecoder {
    while (input.available < n && !input.ended) {
      const chunk = yield "input";
      if (chunk === undefined) input.ended = true;
      else input.push(chunk);
    }
  }
  let version = 0;
  let parts = 0;
  for (;;) {
    yield* fill(1);
    if (input.available === 0) break;
    // A tag and a length prefix take at most 20 bytes.
    yield* fill(20);
    const head = new WireReader(input.peek(20), "bytes");
    const tag = head.varint();
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    if (number === 3 && wire === wireType.delimited) {
      const length = head.varint();
      input.skip(head.pos);
      yield* fill(length);
      if (input.available < length) throw truncated();
      const part = yield* input.take(length);
      yield* decodePart(part, parts++, builder, version === 2, slice);
    } else if (number === 1 && wire === wireType.varint) {
      version = head.varint() >>> 0;
      input.skip(head.pos);
      if (!readableFormatVersions.includes(version)) throw versionError(version);
    } else if (number === 2 && wire === wireType.varint) {
      // taken_at_ms; past 2^53 it is no Unix ms this store could have written.
      const ms = head.varint();
      input.skip(head.pos);
      builder.takenAtMs = ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
    } else if (number === 4 && wire === wireType.delimited) {
      const length = head.varint();
      input.skip(head.pos);
      yield* fill(length);
      if (input.available < length) throw truncated();
      const bytes = yield* input.take(length);
      builder.epoch = utf8.decode(bytes);
    } else if (wire === wireType.delimited) {
      // Fields a later version may add are skipped.
      const length = head.varint();
      input.skip(head.pos);
      yield* fill(length);
      if (input.available < length) throw truncated();
      input.skip(length);
    } else {
      const size = wire === wireType.bit64 ? 8 : wire === wireType.bit32 ? 4 : 0;
      if (size > 0) {
        yield* fill(head.pos + size);
        if (input.available < head.pos + size) throw truncated();
        input.skip(head.pos + size);
      } else {
        head.skip(wire);
        input.skip(head.pos);
      }
    }
  }
  if (version === 0) throw versionError(version);
}

function truncated(): StoreError {
  return new StoreError("snapshot_malformed", "bytes", "ends mid-field: the snapshot is cut short");
}

function versionError(version: number): StoreError {
  return new StoreError(
    "snapshot_version",
    "format_version",
    `is ${version}; this version reads only ${readableFormatVersions.join(" and ")}`,
  );
}

/** Runs `decoder` to its end on `bytes`, all at hand, without pausing. */
export function runDecoderSync(decoder: SnapshotDecoder, bytes: Uint8Array): void {
  let fed = false;
  let request = decoder.next();
  while (request.done !== true) {
    if (request.value === "input" && !fed) {
      fed = true;
      request = decoder.next(bytes);
    } else {
      request = decoder.next(undefined);
    }
  }
}

/**
 * Runs `decoder` on `chunks` as they come, letting the event loop turn
 * (`setImmediate`) at every pause it asks for. The decoder's errors reject;
 * so does a chunk that is not a `Uint8Array` (`invalid_argument`, `chunks`).
 */
export async function runDecoder(
  decoder: SnapshotDecoder,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  nextTurn: () => Promise<unknown>,
): Promise<void> {
  let request = decoder.next();
  const settle = async () => {
    while (request.done !== true && request.value === "pause") {
      await nextTurn();
      request = decoder.next();
    }
  };
  await settle();
  for await (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array)) {
      throw new StoreError("invalid_argument", "chunks", "must yield Uint8Arrays");
    }
    request = decoder.next(chunk);
    await settle();
  }
  request = decoder.next(undefined);
  await settle();
}
