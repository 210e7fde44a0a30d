// What the Redis benches send and read, shared by main.ts and store.ts.
import { create } from "@bufbuild/protobuf";
import { type DeltaUpdate, DeltaUpdateSchema } from "@fair/state-proto";
import type { Redis } from "ioredis";
import { KeyLayout, type SlotGroup } from "../src/keys.js";

/** Deltas per update in every bench. */
export const DELTAS = 100;

/** A deterministic generator of numbers in (0, 1) (Park–Miller), so runs compare. */
export function lcg(): () => number {
  let x = 1;
  return () => {
    x = (x * 16_807) % 2_147_483_647;
    return x / 2_147_483_647;
  };
}

/**
 * One update of {@link DELTAS} deltas in a tracker's mix: 30 % failures (+0.05)
 * and 70 % successes (−0.01), keys over 3 × 1000 buckets, stamped `now`.
 */
export function trackerMix(seed: bigint, now: number, next: () => number): DeltaUpdate {
  const deltas = [];
  for (let i = 0; i < DELTAS; i++) {
    const failure = next() < 0.3;
    deltas.push({
      rowId: BigInt(Math.floor(next() * 3)),
      colId: BigInt(Math.floor(next() * 1000)),
      deltaProb: failure ? 0.05 : -0.01,
      lastUpdateTimeMs: BigInt(now),
    });
  }
  return create(DeltaUpdateSchema, { seed, deltas });
}

/** Redis's own time per script call since the last `CONFIG RESETSTAT`, µs (`cmdstat_evalsha`). */
export async function scriptMicrosPerCall(raw: Redis): Promise<number> {
  const line = (await raw.info("commandstats"))
    .split("\n")
    .find((l) => l.startsWith("cmdstat_evalsha:"));
  return Number(/usec_per_call=([\d.]+)/.exec(line ?? "")?.[1] ?? 0);
}

/**
 * Bytes per bucket Redis holds for one row of one seed (`MEMORY USAGE` /
 * `HLEN`): the row's part in the one slot group of a single Redis
 * (keys.ts), or the row hash of the layout before slot groups
 * (`<prefix>{|<seed>}:r<row>`), for a store module of that version.
 */
export async function bytesPerBucket(
  raw: Redis,
  keyPrefix: string,
  seed: bigint,
  row: number,
): Promise<number> {
  const layout = new KeyLayout(keyPrefix, 1);
  let key = layout.rowPart(layout.groups[0] as SlotGroup, `|${seed}|${row}`);
  if ((await raw.exists(key)) === 0) key = `${keyPrefix}{|${seed}}:r${row}`;
  return Number(await raw.memory("USAGE", key)) / (await raw.hlen(key));
}
