import { randomUUID } from "node:crypto";
import type { StoreEpoch, StoreEpochs } from "@fair/state-store";

// The state epoch on Redis: one key per key prefix, `<prefix>{epoch}`,
// holding the epoch as JSON, `{"id":"<uuid>","startedAtMs":<ms>}`, without a
// TTL. Whoever finds it missing creates it with the epoch script
// (scripts.ts): set only if still absent, then read back, in one step, so
// replicas that race all adopt the one that won. The key's presence is what
// says Redis still holds the data: a Redis that restarted empty, a FLUSHALL
// or a deleted prefix take it with them, and the next replica to look
// creates a new epoch. Eviction never deletes it, and with no TTL, Redis'
// `volatile-*` maxmemory policies never evict it either.
//
// Each slot group keeps a copy (keys.ts), which its scripts compare with the
// epoch the replica passes: a group whose copy is missing or different
// writes nothing, and the replica reads the epoch key to tell a group that
// was only behind (the copy is rewritten) from a new epoch (followed).
// A replica also looks at the key when its subscriber (re)connects (before
// it serves), with every re-read of a group (gaps, resyncs), and when
// another replica announces a new epoch: the epoch script publishes
// `E1 <the epoch's JSON>` on the epoch channel (`<prefix>{epoch}:c`) when it
// creates one. JSON leaves room for more fields: a reader takes the two it
// knows.

/** The line the epoch script publishes when it creates an epoch: `E1 ` and the epoch's JSON. */
export const epochNoticePrefix = "E1 ";

/** A new epoch beginning at `nowMs`, with a random id. */
export function freshEpoch(nowMs: number): StoreEpoch {
  return { id: randomUUID(), startedAtMs: nowMs };
}

/** The epoch key's value for `epoch`. */
export function encodeEpoch(epoch: StoreEpoch): string {
  return JSON.stringify({ id: epoch.id, startedAtMs: epoch.startedAtMs });
}

/** Reads the epoch key's value; `undefined` for anything that is not an epoch. */
export function parseEpoch(text: string): StoreEpoch | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const { id, startedAtMs } = value as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return undefined;
  if (typeof startedAtMs !== "number" || !Number.isFinite(startedAtMs)) return undefined;
  return Object.freeze({ id, startedAtMs });
}

/**
 * What a script answers when the epoch key no longer holds the epoch the
 * replica passed: what it holds instead (`null`: missing), and
 * {@link EpochKeeper.changes} when the replica sent the script.
 */
export class EpochMoved {
  readonly stored: string | null;
  readonly changes: number;

  constructor(stored: string | null, changes: number) {
    this.stored = stored;
    this.changes = changes;
  }
}

/** What the keeper asks of the store around it; `Via` is another way to Redis than the usual. */
export interface EpochDeps<Via> {
  /** The epoch key's name, for messages. */
  readonly key: string;
  /** Reads the epoch key (on the command connection). */
  read(): Promise<string | null>;
  /**
   * Runs the epoch script with `value` — through `via` (the subscriber,
   * before it subscribes) when given — and resolves with what the key holds.
   */
  create(value: string, via: Via | undefined): Promise<string>;
  /** The store's clock, for a new epoch's start. */
  now(): number;
  /**
   * Called when an epoch replaces another, before the listeners hear of it:
   * the data the relay's group sequences counted is gone, so it starts over.
   */
  replaced(): void;
  /**
   * Called after every epoch adopted: `replaced` whether one came before
   * it, `resync` as the caller of {@link EpochKeeper.learn} asked (false
   * when it reads every group anyway).
   */
  adopted(replaced: boolean, resync: boolean): void;
}

/**
 * The epoch a store knows, how it follows the epoch key, and who listens:
 * the `epochs` capability behind a read-only {@link EpochKeeper.view}.
 */
export class EpochKeeper<Via> {
  readonly #deps: EpochDeps<Via>;
  #current: StoreEpoch | undefined;
  #text = "";
  #changes = 0;
  #replacements = 0;
  #problem: string | undefined;
  readonly #listeners = new Set<(epoch: StoreEpoch) => void>();
  /** What `store.epochs` hands out: the current epoch and the listeners, nothing to change. */
  readonly view: StoreEpochs;

  constructor(deps: EpochDeps<Via>) {
    this.#deps = deps;
    const keeper = this;
    this.view = Object.freeze({
      get current() {
        return keeper.current;
      },
      onEpochChange: (listener: (epoch: StoreEpoch) => void) => this.onEpochChange(listener),
    });
  }

  /** The epoch last adopted; `undefined` before the first. */
  get current(): StoreEpoch | undefined {
    return this.#current;
  }

  /**
   * The epoch key's value as the current epoch was read from it, for the
   * scripts to compare with what the key holds when they run; `""` before
   * the first epoch (the scripts then do not compare).
   */
  get text(): string {
    return this.#text;
  }

  /** Epochs adopted so far, the first included: a reader notes it when its read begins. */
  get changes(): number {
    return this.#changes;
  }

  /** Epochs that replaced another (the data was lost), for metrics. */
  get replacements(): number {
    return this.#replacements;
  }

  /** Why the key could not be taken as an epoch, while that is so; for readiness. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Calls `listener` with every epoch adopted from now on (the first one learned too). */
  onEpochChange(listener: (epoch: StoreEpoch) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets every listener: the store stopped. */
  clear(): void {
    this.#listeners.clear();
  }

  /** Reads the key and follows it; failures are left to the next look (every script, re-read, reconnect). */
  async check(): Promise<void> {
    const changes = this.#changes;
    try {
      const stored = await this.#deps.read();
      if (stored !== this.#text) await this.learn(stored, changes);
    } catch {
      // Counted by the store as a failed operation.
    }
  }

  /**
   * Takes what the key held when a read began (`stored`, `null` when
   * missing; `changes` as it was then) as the epoch: creates a new one when
   * it was missing (the epoch script, through `via` if given), then adopts
   * it. Does nothing if another epoch was adopted since the read began:
   * that one is at least as new. Rejects when the key holds something that
   * is not an epoch, which keeps the store from serving.
   */
  async learn(
    stored: string | null,
    changes: number,
    how: { readonly via?: Via; readonly resync?: boolean } = {},
  ): Promise<void> {
    if (this.#changes !== changes) return;
    const text =
      stored ?? (await this.#deps.create(encodeEpoch(freshEpoch(this.#deps.now())), how.via));
    const epoch = parseEpoch(text);
    if (epoch === undefined) {
      this.#problem = `the epoch key ${this.#deps.key} holds ${JSON.stringify(text.slice(0, 100))}, not an epoch`;
      throw new Error(this.#problem);
    }
    this.#problem = undefined;
    this.#adopt(epoch, text, how.resync ?? true);
  }

  /** Makes `epoch` current; a new one is told to the store, then to every listener. */
  #adopt(epoch: StoreEpoch, text: string, resync: boolean): void {
    this.#text = text;
    const previous = this.#current;
    if (previous?.id === epoch.id) return;
    const replaced = previous !== undefined;
    if (replaced) {
      this.#replacements++;
      this.#deps.replaced();
    }
    this.#current = epoch;
    this.#changes++;
    for (const listener of [...this.#listeners]) listener(epoch);
    this.#deps.adopted(replaced, resync);
  }
}
