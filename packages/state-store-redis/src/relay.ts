import type { BucketState } from "@fair/state-store";
import type { ChangeMessage } from "./message.js";

/** One row part of a group read back: its (namespace, seed) and every bucket in it, tombstones as prob 0. */
export interface RowPartRead {
  readonly namespace: string;
  readonly seed: bigint;
  readonly buckets: readonly BucketState[];
}

interface GroupState {
  /** The highest sequence handled in the channel's order; undefined before the first. */
  last: number | undefined;
  /** Buckets of this replica's own calls delivered ahead of older messages: bucket → sequence. */
  ahead: Map<string, number> | undefined;
  /** Own sequences delivered from the script's reply, whose echo has not come yet. */
  ownDelivered: Set<number> | undefined;
  /** Whether a re-read is in flight. */
  rereading: boolean;
  /** Channel messages that came while it was, in order. */
  held: ChangeMessage[];
}

/** What the relay delivers to and asks of the store around it. */
export interface RelayDeps {
  readonly replicaId: string;
  /** Hands changed buckets of one (namespace, seed) on, in order per bucket. */
  deliver(namespace: string, seed: bigint, buckets: BucketState[]): void;
  /** Starts reading one group back whole; the store answers with `rereadDone` or `rereadFailed`. */
  reread(group: number): void;
}

/** The relay's counters, plain numbers that only grow. */
export interface RelayCounters {
  /** Change messages received from other replicas. */
  messagesReceived: number;
  /** Buckets delivered from other replicas' messages and from re-reads. */
  bucketsRelayed: number;
  /** Group sequences that jumped (messages lost): each group was re-read. */
  gaps: number;
  /** Row parts (one row's buckets in one group) read back, for gaps and resyncs. */
  rowsReread: number;
  /** Messages that did not parse (another format, or corrupt); ignored. */
  badMessages: number;
}

/**
 * Orders every change this replica learns of — its own script calls (from
 * the reply) and the other replicas' (from the group channels) — so that
 * the buckets handed on never go back in time, and notices lost messages.
 *
 * Each slot group has a sequence its scripts increment, and each script
 * publishes from inside Redis on its group's sharded channel, so a channel
 * carries its group's sequence in order. A sequence that jumps means
 * messages were lost: the group is read back whole (an atomic script:
 * sequence and buckets together, tombstones included) and delivered, and
 * the messages that came meanwhile follow it. Own calls are delivered
 * once, from the reply or from their echo, whichever comes first; buckets
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
  readonly #groups = new Map<number, GroupState>();

  constructor(deps: RelayDeps) {
    this.#deps = deps;
  }

  /** This replica's own call, from the script's reply. */
  own(change: ChangeMessage): void {
    const state = this.#state(change.group);
    const { sequence } = change;
    if (state.last !== undefined && sequence <= state.last) return; // its echo came first
    // A newer own reply may have come first (concurrent calls to one group).
    const out = newer(state, change.namespace, change.seed, change.buckets, sequence);
    if (!state.rereading && state.last === sequence - 1) {
      // Nothing older is on its way: the reply is simply the next message.
      state.last = sequence;
      purge(state);
    } else {
      state.ownDelivered ??= new Set();
      state.ownDelivered.add(sequence);
      state.ahead ??= new Map();
      for (const bucket of out) {
        state.ahead.set(bucketKey(change.namespace, change.seed, bucket), sequence);
      }
    }
    if (out.length > 0) this.#deps.deliver(change.namespace, change.seed, out);
  }

  /** A change message from a channel; `undefined` if it did not parse. */
  received(change: ChangeMessage | undefined): void {
    if (change === undefined) {
      this.counters.badMessages++;
      return;
    }
    if (change.origin !== this.#deps.replicaId) this.counters.messagesReceived++;
    const state = this.#state(change.group);
    if (state.rereading) state.held.push(change);
    else this.#handle(state, change);
  }

  /** Re-reads every group: after (re)subscribing, messages may have been lost. */
  resync(groups: number): void {
    for (let group = 0; group < groups; group++) {
      if (!this.#state(group).rereading) this.#startReread(group);
    }
  }

  /** A group read back at `sequence`: every live row part in it. */
  rereadDone(group: number, sequence: number, parts: readonly RowPartRead[]): void {
    const state = this.#groups.get(group);
    if (state === undefined || !state.rereading) return; // reset since, or not asked for
    state.rereading = false;
    this.counters.rowsReread += parts.length;
    for (const part of parts) {
      const out = newer(state, part.namespace, part.seed, part.buckets, sequence);
      this.counters.bucketsRelayed += out.length;
      if (out.length > 0) this.#deps.deliver(part.namespace, part.seed, out);
    }
    // The read is the truth, even behind what was seen (Redis lost writes).
    state.last = sequence;
    purge(state);
    this.#release(state);
  }

  /** A re-read that failed: forget what is known, so the next message starts afresh. */
  rereadFailed(group: number): void {
    const state = this.#groups.get(group);
    if (state === undefined || !state.rereading) return;
    state.rereading = false;
    state.last = undefined;
    this.#release(state);
  }

  /** Forgets every group: Redis lost its data (a restart), so sequences start again. */
  reset(): void {
    this.#groups.clear();
  }

  #handle(state: GroupState, change: ChangeMessage): void {
    const { sequence } = change;
    // First sight of a group: take it as the next message. A replica
    // subscribes before it serves, and (re)subscribing re-reads every group.
    state.last ??= sequence - 1;
    if (sequence <= state.last) return;
    if (sequence > state.last + 1) {
      this.counters.gaps++;
      state.held.push(change);
      this.#startReread(change.group);
      return;
    }
    state.last = sequence;
    const mine = change.origin === this.#deps.replicaId;
    if (!(mine && state.ownDelivered?.has(sequence))) {
      const out = newer(state, change.namespace, change.seed, change.buckets, sequence);
      if (!mine) this.counters.bucketsRelayed += out.length;
      if (out.length > 0) this.#deps.deliver(change.namespace, change.seed, out);
    }
    purge(state);
  }

  /** Handles the messages held during a re-read, in order; a new gap holds the rest again. */
  #release(state: GroupState): void {
    const held = state.held;
    state.held = [];
    for (const change of held) {
      if (state.rereading) state.held.push(change);
      else this.#handle(state, change);
    }
  }

  #startReread(group: number): void {
    this.#state(group).rereading = true;
    this.#deps.reread(group);
  }

  #state(group: number): GroupState {
    let state = this.#groups.get(group);
    if (state === undefined) {
      state = {
        last: undefined,
        ahead: undefined,
        ownDelivered: undefined,
        rereading: false,
        held: [],
      };
      this.#groups.set(group, state);
    }
    return state;
  }
}

function bucketKey(namespace: string, seed: bigint, bucket: BucketState): string {
  return `${seed}|${bucket.rowId}|${bucket.colId}|${namespace}`;
}

/** The buckets, except those an own call newer than `sequence` already set. */
function newer(
  state: GroupState,
  namespace: string,
  seed: bigint,
  buckets: readonly BucketState[],
  sequence: number,
): BucketState[] {
  const ahead = state.ahead;
  if (ahead === undefined) return buckets as BucketState[];
  return buckets.filter((bucket) => {
    const own = ahead.get(bucketKey(namespace, seed, bucket));
    return own === undefined || own <= sequence;
  });
}

/**
 * Drops what `last` has caught up with: own sequences at or below it, and,
 * when any was, the buckets they delivered ahead.
 */
function purge(state: GroupState): void {
  const own = state.ownDelivered;
  if (own === undefined) return;
  const last = state.last ?? 0;
  let caughtUp = false;
  for (const sequence of own) {
    if (sequence <= last) {
      own.delete(sequence);
      caughtUp = true;
    }
  }
  if (own.size === 0) state.ownDelivered = undefined;
  if (!caughtUp || state.ahead === undefined) return;
  for (const [key, sequence] of state.ahead) if (sequence <= last) state.ahead.delete(key);
  if (state.ahead.size === 0) state.ahead = undefined;
}
