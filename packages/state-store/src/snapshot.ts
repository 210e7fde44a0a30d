import { setImmediate } from "node:timers/promises";

// How a snapshot is cut into steps, so that no step of writing or reading
// one blocks the event loop for long, however many buckets the store holds.
// bench/event-loop.ts measures the longest step at 2^22 buckets in one seed;
// the README quotes it.

/**
 * Work a snapshot does per chunk it hands out: one unit per slot read and
 * four per bucket written, so a chunk is one or two full pages of 8 192
 * slots (~270 KiB), about 0.75 ms of work (2^22 buckets: 256 chunks in
 * 0.18–0.2 s).
 */
export const snapshotSlice = 2 ** 16;

/**
 * Values decoded, or buckets loaded, per step of a restore: about 1 ms of
 * work (2^22 buckets: ~1 500 steps in 1.5–1.7 s).
 */
export const restoreSlice = 2 ** 14;

/** Lets the event loop turn: timers, I/O and other streams run before the next step. */
export function nextTurn(): Promise<void> {
  return setImmediate();
}

/** The chunks as one array. */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
