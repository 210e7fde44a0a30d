import type { BucketState } from "@fair/state-store";
import type { ChangeMessage, RowChange } from "./message.js";

/** One row of one (namespace, seed): the unit of versioning and of re-reads. */
export interface RowRef {
  readonly namespace: string;
  readonly seed: bigint;
  readonly row: number;
}

interface RowState extends RowRef {
  /** The highest version handled in the channel's order; undefined before the first. */
  last: number | undefined;
  /** Columns of this replica's own updates delivered ahead of their echo: col → version. */
  ahead: Map<number, number> | undefined;
  /** Own versions delivered from the script's reply, whose echo has not come yet. */
  ownDelivered: Set<number> | undefined;
  /** A re-read in flight, and the highest version seen while it was. */
  reread: { maxSeen: number } | undefined;
}

/** What the relay delivers to and asks of the store around it. */
export interface RelayDeps {
  readonly replicaId: string;
  /** Hands changed buckets of one (namespace, seed) on, in order per row. */
  deliver(namespace: string, seed: bigint, buckets: BucketState[]): void;
  /** Starts reading these rows back; the store answers with `rereadDone` or `rereadFailed`. */
  reread(rows: RowRef[]): void;
}

/** The relay's counters, plain numbers that only grow. */
export interface RelayCounters {
  /** Change messages received from other replicas. */
  messagesReceived: number;
  /** Buckets delivered from other replicas' messages and from re-reads. */
  bucketsRelayed: number;
  /** Rows whose version jumped (messages lost): each was re-read. */
  gaps: number;
  /** Rows read back, for gaps and resyncs. */
  rowsReread: number;
  /** Messages that did not parse (another format, or corrupt); ignored. */
  badMessages: number;
}

/**
 * Orders every change this replica learns of — its own applies (from the
 * script's reply) and the other replicas' (from the channel) — so that the
 * buckets handed on never go back in time, and notices lost messages.
 *
 * Each row hash carries a version the apply script increments, and the
 * script publishes from inside Redis, so the channel carries every row's
 * versions in order. A version that jumps means messages were lost: the row
 * is re-read (`HGETALL`, version and buckets in one atomic read, tombstones
 * included) and delivered whole. Own updates are delivered once, from the
 * reply or from their echo on the channel, whichever comes first; buckets
 * delivered from a reply ahead of older messages still on their way are
 * remembered, so those older messages cannot overwrite them.
 */
export class Relay {
  readonly counters: RelayCounters = {
    messagesReceived: 0,
    bucketsRelayed: 0,
    gaps: 0,
    rowsReread: 0,
    badMessages: 0,
  };
  readonly #deps: RelayDeps;
  readonly #rows = new Map<string, RowState>();

  constructor(deps: RelayDeps) {
    this.#deps = deps;
  }

  /** Rows tracked now. */
  get size(): number {
    return this.#rows.size;
  }

  /** This replica's own applied batch, from the script's reply. */
  own(change: ChangeMessage): void {
    const out: BucketState[] = [];
    for (const row of change.rows) {
      const state = this.#state(change.namespace, change.seed, row.row);
      if (state.last !== undefined && row.version <= state.last) continue; // its echo came first
      state.ownDelivered ??= new Set();
      state.ownDelivered.add(row.version);
      state.ahead ??= new Map();
      const ahead = state.ahead;
      for (const bucket of row.buckets) {
        ahead.set(bucket.colId, row.version);
        out.push(bucket);
      }
    }
    if (out.length > 0) this.#deps.deliver(change.namespace, change.seed, out);
  }

  /** A change message from the channel; `undefined` if it did not parse. */
  received(change: ChangeMessage | undefined): void {
    if (change === undefined) {
      this.counters.badMessages++;
      return;
    }
    const mine = change.origin === this.#deps.replicaId;
    if (!mine) this.counters.messagesReceived++;
    const out: BucketState[] = [];
    for (const row of change.rows) {
      const state = this.#state(change.namespace, change.seed, row.row);
      if (state.reread) {
        state.reread.maxSeen = Math.max(state.reread.maxSeen, row.version);
        continue;
      }
      // First sight of a row: take it as the next version. A replica
      // subscribes before it serves, and reconnects resync every row.
      state.last ??= row.version - 1;
      if (row.version <= state.last) continue;
      if (row.version > state.last + 1) {
        this.counters.gaps++;
        this.#startReread([state], row.version);
        continue;
      }
      if (mine) {
        if (!state.ownDelivered?.has(row.version)) out.push(...row.buckets);
      } else {
        const before = out.length;
        pushNewer(out, row, state.ahead);
        this.counters.bucketsRelayed += out.length - before;
      }
      state.last = row.version;
      purge(state);
    }
    if (out.length > 0) this.#deps.deliver(change.namespace, change.seed, out);
  }

  /** Marks these rows stale and re-reads them: after (re)subscribing, messages may be lost. */
  resync(rows: readonly RowRef[]): void {
    const states = rows
      .map((ref) => this.#state(ref.namespace, ref.seed, ref.row))
      .filter((state) => state.reread === undefined);
    // Rows tracked but no longer listed (their seed was evicted or expired) are re-read too.
    const listed = new Set(states);
    for (const state of this.#rows.values()) {
      if (state.reread === undefined && !listed.has(state)) states.push(state);
    }
    if (states.length > 0) this.#startReread(states, 0);
  }

  /** A row read back: its version and every bucket in it, tombstones as prob 0. */
  rereadDone(ref: RowRef, version: number, buckets: readonly BucketState[]): void {
    const state = this.#rows.get(keyOf(ref.namespace, ref.seed, ref.row));
    if (state?.reread === undefined) return; // reset since, or not asked for
    this.counters.rowsReread++;
    const out: BucketState[] = [];
    pushNewer(out, { row: ref.row, version, buckets: buckets as BucketState[] }, state.ahead);
    this.counters.bucketsRelayed += out.length;
    state.last = Math.max(state.last ?? version, version);
    purge(state);
    const { maxSeen } = state.reread;
    state.reread = undefined;
    if (maxSeen > state.last) this.#startReread([state], maxSeen);
    if (out.length > 0) this.#deps.deliver(ref.namespace, ref.seed, out);
  }

  /** A re-read that failed: forget what is known, so the next message starts afresh. */
  rereadFailed(ref: RowRef): void {
    const state = this.#rows.get(keyOf(ref.namespace, ref.seed, ref.row));
    if (state === undefined) return;
    state.reread = undefined;
    state.last = undefined;
  }

  /** Forgets every row: Redis lost its data (a restart), so versions start again. */
  reset(): void {
    this.#rows.clear();
  }

  /** Forgets the rows of seeds below `horizon`: evicted, they will not change again. */
  forget(horizon: bigint): void {
    for (const [key, state] of this.#rows) if (state.seed < horizon) this.#rows.delete(key);
  }

  #startReread(states: RowState[], maxSeen: number): void {
    for (const state of states) state.reread = { maxSeen };
    this.#deps.reread(states);
  }

  #state(namespace: string, seed: bigint, row: number): RowState {
    const key = keyOf(namespace, seed, row);
    let state = this.#rows.get(key);
    if (state === undefined) {
      state = {
        namespace,
        seed,
        row,
        last: undefined,
        ahead: undefined,
        ownDelivered: undefined,
        reread: undefined,
      };
      this.#rows.set(key, state);
    }
    return state;
  }
}

function keyOf(namespace: string, seed: bigint, row: number): string {
  return `${seed} ${row} ${namespace}`;
}

/** Appends the row's buckets, except those an own update newer than `row.version` already set. */
function pushNewer(
  out: BucketState[],
  row: RowChange,
  ahead: Map<number, number> | undefined,
): void {
  for (const bucket of row.buckets) {
    const newer = ahead?.get(bucket.colId);
    if (newer === undefined || newer <= row.version) out.push(bucket);
  }
}

/** Drops what `last` has caught up with. */
function purge(state: RowState): void {
  const last = state.last ?? 0;
  if (state.ahead) {
    for (const [col, version] of state.ahead) if (version <= last) state.ahead.delete(col);
    if (state.ahead.size === 0) state.ahead = undefined;
  }
  if (state.ownDelivered) {
    for (const version of state.ownDelivered)
      if (version <= last) state.ownDelivered.delete(version);
    if (state.ownDelivered.size === 0) state.ownDelivered = undefined;
  }
}
