import type { BucketState } from "@fair/state-store";
import { valueBytes } from "./keys.js";

// The change message a script returns and publishes on its group's
// channel: one text line, then the changed buckets packed.
//
//   F2 <replica id> <group> <sequence> <encoded namespace>|<seed>\n
//   then 24 bytes per changed bucket: little-endian uint32 row, uint32
//   column, double prob, double lastUpdateTimeMs
//
// "F2" names the format, so a replica that meets another format (a newer
// replica during a rolling update) re-reads instead of misreading it.

const FORMAT = "F2";
const entryBytes = 24;

/** One applied script call, as published: the group's new sequence and what changed. */
export interface ChangeMessage {
  readonly origin: string;
  readonly group: number;
  readonly sequence: number;
  readonly namespace: string;
  readonly seed: bigint;
  readonly buckets: BucketState[];
}

/** The start of the header, written by TypeScript and passed to the script. */
export function messageHeader(origin: string, group: number): string {
  return `${FORMAT} ${origin} ${group}`;
}

/** Parses a change message; `undefined` for anything malformed or of another format. */
export function parseMessage(data: Buffer): ChangeMessage | undefined {
  const end = data.indexOf(10);
  if (end < 0 || (data.length - end - 1) % entryBytes !== 0) return undefined;
  const header = data.toString("latin1", 0, end).split(" ");
  if (header.length !== 5 || header[0] !== FORMAT) return undefined;
  const group = Number(header[2]);
  const sequence = Number(header[3]);
  const target = parseSeedField(header[4] as string);
  if (!Number.isInteger(group) || !Number.isInteger(sequence) || target === undefined) {
    return undefined;
  }
  const buckets: BucketState[] = [];
  for (let at = end + 1; at < data.length; at += entryBytes) {
    buckets.push({
      rowId: data.readUInt32LE(at),
      colId: data.readUInt32LE(at + 4),
      prob: data.readDoubleLE(at + 8),
      lastUpdateTimeMs: data.readDoubleLE(at + 16),
    });
  }
  return { origin: header[1] as string, group, sequence, ...target, buckets };
}

/** `<encoded namespace>|<seed>` read back; `undefined` when malformed. */
export function parseSeedField(field: string): { namespace: string; seed: bigint } | undefined {
  const bar = field.lastIndexOf("|");
  if (bar < 0 || !/^\d{1,20}$/.test(field.slice(bar + 1))) return undefined;
  try {
    return {
      namespace: decodeURIComponent(field.slice(0, bar)),
      seed: BigInt(field.slice(bar + 1)),
    };
  } catch {
    return undefined;
  }
}

/** A stored bucket value (16 bytes: prob, lastUpdateTimeMs); `undefined` when malformed. */
export function parseValue(rowId: number, colId: number, value: Buffer): BucketState | undefined {
  if (value.length !== valueBytes) return undefined;
  return { rowId, colId, prob: value.readDoubleLE(0), lastUpdateTimeMs: value.readDoubleLE(8) };
}

/** A row part's member, `<ns>|<seed>|<row>`, read back; `undefined` when malformed. */
export function parseRowMember(
  member: string,
): { namespace: string; seed: bigint; row: number } | undefined {
  const match = /^(.*)\|(\d{1,10})$/.exec(member);
  if (match === null) return undefined;
  const target = parseSeedField(match[1] as string);
  return target === undefined ? undefined : { ...target, row: Number(match[2]) };
}

/**
 * A row part as read back (`HGETALL` as buffers, flat field, value, …):
 * every bucket in it, tombstones (prob 0) included.
 */
export function parseRowPart(row: number, fields: readonly Buffer[]): BucketState[] {
  const buckets: BucketState[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const bucket = parseValue(
      row,
      Number((fields[i] as Buffer).toString("latin1")),
      fields[i + 1] as Buffer,
    );
    if (bucket !== undefined) buckets.push(bucket);
  }
  return buckets;
}
