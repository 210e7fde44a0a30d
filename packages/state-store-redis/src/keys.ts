import { StoreError } from "@fair/state-store";

// Every key the store writes, in one place. For prefix `fair:`, namespace
// `checkout` and seed 1764136800000:
//
//   fair:{checkout|1764136800000}:r3   hash, one per (namespace, seed, row):
//                                      field <col> → "<prob> <lastUpdateTimeMs>",
//                                      field v → the row's version
//   fair:{checkout|1764136800000}:m    hash: n → buckets held, r<row> → 1 per row
//   fair:ns:checkout                   sorted set of the namespace's seeds holding
//                                      buckets ("<seed, 20 digits>" by seed), for
//                                      maxSeedsPerNamespace
//   fair:namespaces                    sorted set of the namespaces holding buckets
//                                      (encoded) by their latest seed, for
//                                      maxNamespaces
//   fair:seeds                         sorted set of "<seed, 20 digits> <namespace>"
//                                      by seed: what eviction and stats walk
//   fair:floor                         the highest seed passed to evictBefore
//   fair:epoch                         the state epoch, JSON {"id", "startedAtMs"},
//                                      no TTL: present while Redis holds the data
//                                      (epoch.ts)
//   fair:updates                       the channel changes (and new epochs) are
//                                      published on
//
// Keys of one (namespace, seed) share a hash tag, so a batch touches one
// cluster slot for its rows (see the README on Cluster). Every key of a seed
// expires when the seed leaves the eviction horizon; the epoch key never
// expires and eviction never touches it.

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

/** The names of every key and channel under one prefix. */
export class KeyLayout {
  readonly prefix: string;
  readonly index: string;
  readonly namespaces: string;
  readonly floor: string;
  readonly epoch: string;
  readonly channel: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.index = `${prefix}seeds`;
    this.namespaces = `${prefix}namespaces`;
    this.floor = `${prefix}floor`;
    this.epoch = `${prefix}epoch`;
    this.channel = `${prefix}updates`;
  }

  /** The hash tag shared by every key of one (namespace, seed). */
  seedTag(encodedNamespace: string, seed: bigint): string {
    return `${this.prefix}{${encodedNamespace}|${seed}}`;
  }

  meta(tag: string): string {
    return `${tag}:m`;
  }

  row(tag: string, row: number): string {
    return `${tag}:r${row}`;
  }

  /** The sorted set of one namespace's seeds that hold buckets. */
  namespaceSeeds(encodedNamespace: string): string {
    return `${this.prefix}ns:${encodedNamespace}`;
  }

  /** The seed index member of one (namespace, seed). */
  indexMember(encodedNamespace: string, seed: bigint): string {
    return `${padSeed(seed)} ${encodedNamespace}`;
  }
}
