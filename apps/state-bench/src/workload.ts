import { create, toBinary } from "@bufbuild/protobuf";
import { SyncRequestSchema } from "@fair/state-proto";
import { frame } from "./grpc-frames.js";

/** The FAIR levels the load spreads each client's buckets over. */
export const LOAD_ROWS = 3;

/** Columns one client's `buckets` take in each load row; client `c` uses `[c·n, (c+1)·n)`. */
export function columnsPerClient(buckets: number): number {
  return Math.ceil(buckets / LOAD_ROWS);
}

/** The probe bucket's row: the top FAIR level the server accepts by default, never used by the load. */
export const PROBE_ROW = 255;

/** A framed SyncRequest asking for the full state of `seed`. */
export function stateRequestFrame(seed: bigint): Buffer {
  return frame(
    toBinary(
      SyncRequestSchema,
      create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } }),
    ),
  );
}

/** A framed DeltaUpdate of `deltas` = [row, col, delta, ts] for `seed`. */
export function deltaUpdateFrame(
  seed: bigint,
  deltas: readonly (readonly [number, number, number, number])[],
): Buffer {
  return frame(
    toBinary(
      SyncRequestSchema,
      create(SyncRequestSchema, {
        request: {
          case: "deltaUpdate",
          value: {
            seed,
            deltas: deltas.map(([row, col, deltaProb, ts]) => ({
              rowId: BigInt(row),
              colId: BigInt(col),
              deltaProb,
              lastUpdateTimeMs: BigInt(ts),
            })),
          },
        },
      }),
    ),
  );
}

/**
 * One client's messages, encoded once before the run: `buckets` distinct
 * buckets of its own (3 FAIR levels, distinct columns per client), `perMessage`
 * deltas each, cycled through during the run. Each delta adds 0.001, so a
 * bucket needs a thousand of them to reach the clamp: every delta changes its
 * bucket and is broadcast.
 */
export function encodeClientMessages(
  seed: bigint,
  client: number,
  buckets: number,
  perMessage: number,
  timeMs: number,
): Buffer[] {
  const messages: Buffer[] = [];
  const base = client * columnsPerClient(buckets);
  for (let start = 0; start < buckets; start += perMessage) {
    const deltas: [number, number, number, number][] = [];
    for (let i = start; i < Math.min(buckets, start + perMessage); i++) {
      deltas.push([i % LOAD_ROWS, base + Math.floor(i / LOAD_ROWS), 0.001, timeMs]);
    }
    messages.push(deltaUpdateFrame(seed, deltas));
  }
  return messages;
}
