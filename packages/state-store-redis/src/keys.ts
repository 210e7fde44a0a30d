/// <reference path="./cluster-key-slot.d.ts" />
import { StoreError } from "@fair/state-store";
import clusterKeySlot from "cluster-key-slot";

// Every key the store writes, in one place (docs/decisions/0011). Buckets
// live in slot groups: G fixed hash tags (G = slotGroups: 1 on one Redis, 16
// by default on a Cluster), each tag chosen so the G tags fall in G evenly
// spaced ranges of the 16,384 Cluster slots. A bucket's group is a hash of
// (namespace, seed, row, column block), so the hot current seed spreads over
// every group, and a group holds everything one atomic script needs. Within
// a group, the buckets of one row of one seed are one hash (the row's part
// in the group), so a script touches at most one key per row. For prefix
// `fair:` and group T = `fair:{g3of16.41}`:
//
//   T:r:<ns>|<seed>|<row>          hash, the row's buckets the group holds:
//                                  field <col> → 16 bytes, prob and
//                                  lastUpdateTimeMs as little-endian
//                                  doubles (prob 0: tombstone)
//   T:i                            sorted set of the group's row parts
//                                  ("<ns>|<seed>|<row>") by seed
//   T:n                            hash "<ns>|<seed>" → buckets the group
//                                  holds for that seed (maxBucketsPerSeed)
//   T:ns:<ns>                      sorted set of the namespace's seeds the
//                                  group holds buckets of, by seed
//                                  (maxSeedsPerNamespace)
//   T:nss                          sorted set of the namespaces the group
//                                  holds buckets of, by latest seed
//                                  (maxNamespaces)
//   T:s                            the group's sequence: +1 per change
//   T:c                            the group's sharded change channel
//   T:f                            the group's eviction floor (a seed)
//   T:e                            the epoch the group's data belongs to
//   fair:{epoch}                   the state epoch, JSON {"id", "startedAtMs"},
//                                  no TTL: present while Redis holds the data
//                                  (epoch.ts)
//   fair:{epoch}:c                 the sharded channel new epochs are
//                                  announced on
//
// <ns> is the percent-encoded namespace, <seed> its decimal digits. Row
// parts expire when their seed leaves the eviction horizon; the other group
// keys hold every seed and are swept by the evict script.

/** Columns per block: the unit a row is spread over the groups in. */
export const blockColumns = 256;

/** Bytes of a stored bucket value: prob and lastUpdateTimeMs, little-endian doubles. */
export const valueBytes = 16;

/** The most slot groups a store may use (each group's tag search costs about 16,384 / G tries). */
export const maxSlotGroups = 256;

/** Redis Cluster's slot count. */
const clusterSlots = 16_384;

/** The 20-digit, zero-padded decimal form of a seed: compares as a string as the seeds do as numbers. */
export function padSeed(seed: bigint): string {
  return seed.toString().padStart(20, "0");
}

/**
 * A namespace as it appears in keys and messages: percent-encoded, so no
 * name can contain the separators (`{`, `}`, `|`, `:`, space, newline) and
 * two names never share keys.
 */
export function encodeNamespace(namespace: string): string {
  try {
    return encodeURIComponent(namespace);
  } catch (cause) {
    // encodeURIComponent throws URIError on a lone surrogate.
    throw new StoreError("invalid_argument", "namespace", "is not well-formed UTF-16", cause);
  }
}

/** One slot group's keys. */
export interface SlotGroup {
  readonly index: number;
  /** `<prefix>{<tag>}`: every key of the group starts with it. */
  readonly base: string;
  readonly sequence: string;
  readonly channel: string;
  readonly floor: string;
  readonly epoch: string;
  /** The index of the group's row parts by seed. */
  readonly rows: string;
  readonly counts: string;
  readonly namespaces: string;
}

/** The names of every key and channel under one prefix. */
export class KeyLayout {
  readonly prefix: string;
  readonly epoch: string;
  readonly epochChannel: string;
  readonly groups: readonly SlotGroup[];

  constructor(prefix: string, groupCount: number) {
    this.prefix = prefix;
    this.epoch = `${prefix}{epoch}`;
    this.epochChannel = `${prefix}{epoch}:c`;
    const groups: SlotGroup[] = [];
    for (let index = 0; index < groupCount; index++) {
      const base = `${prefix}{${groupTag(index, groupCount)}}`;
      groups.push(
        Object.freeze({
          index,
          base,
          sequence: `${base}:s`,
          channel: `${base}:c`,
          floor: `${base}:f`,
          epoch: `${base}:e`,
          rows: `${base}:i`,
          counts: `${base}:n`,
          namespaces: `${base}:nss`,
        }),
      );
    }
    this.groups = groups;
  }

  /** The group index a channel name belongs to; `undefined` for another channel. */
  groupOfChannel(channel: string): number | undefined {
    if (!channel.startsWith(this.prefix) || !channel.endsWith(":c")) return undefined;
    const found = this.groups.findIndex((group) => group.channel === channel);
    return found < 0 ? undefined : found;
  }

  /** The sorted set of one namespace's seeds in one group. */
  namespaceSeeds(group: SlotGroup, encodedNamespace: string): string {
    return `${group.base}:ns:${encodedNamespace}`;
  }

  /** A row part's key in its group. */
  rowPart(group: SlotGroup, member: string): string {
    return `${group.base}:r:${member}`;
  }
}

/** A row part's member name in its group's index: `<ns>|<seed>|<row>`. */
export function rowMember(seedField: string, row: number): string {
  return `${seedField}|${row}`;
}

/** The per-seed field of a group's count hash, and the prefix of its row members: `<ns>|<seed>`. */
export function seedField(encodedNamespace: string, seed: bigint): string {
  return `${encodedNamespace}|${seed}`;
}

/**
 * The group of a (namespace, seed, row, block): FNV-1a over the seed field,
 * mixed with the row and block, modulo the group count. Deterministic, so
 * every replica agrees; cheap, because the seed field's hash is taken once
 * per batch ({@link seedHash}).
 */
export function groupOf(hash: number, row: number, block: number, groupCount: number): number {
  if (groupCount === 1) return 0;
  let h = Math.imul(hash ^ row, 0x01000193) >>> 0;
  h = Math.imul(h ^ block, 0x01000193) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  return (h >>> 0) % groupCount;
}

/** FNV-1a of a seed field, the start of {@link groupOf}. */
export function seedHash(field: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < field.length; i++) {
    h = Math.imul(h ^ field.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The hash tag of group `index` of `count`: `g<index>of<count>.<k>` with the
 * smallest k whose slot falls in the group's range of slots, so G groups
 * land on G evenly spaced slots (and a Cluster whose primaries hold even
 * slot ranges holds even shares of the groups). The count is in the tag, so
 * replicas configured with different counts never share keys.
 */
export function groupTag(index: number, count: number): string {
  const low = Math.floor((index * clusterSlots) / count);
  const high = Math.floor(((index + 1) * clusterSlots) / count);
  for (let k = 0; ; k++) {
    const tag = `g${index}of${count}.${k}`;
    const slot = clusterKeySlot(tag);
    if (slot >= low && slot < high) return tag;
  }
}
