// The relay's ordering rules, driven by hand: no Redis, every interleaving
// of replies, echoes, other replicas' messages and re-reads chosen by the
// test.
import type { BucketState } from "@fair/state-store";
import { describe, expect, test } from "vitest";
import type { ChangeMessage } from "./message.js";
import { Relay, type RowPartRead } from "./relay.js";

const seed = 1_764_136_800_000n;

/** [column, prob] pairs of row 0. */
type Cols = [number, number][];

function buckets(cols: Cols): BucketState[] {
  return cols.map(([colId, prob]) => ({ rowId: 0, colId, prob, lastUpdateTimeMs: 1 }));
}

/** A change message of group 0 (or `group`), in namespace "" and the shared seed. */
function change(origin: string, sequence: number, cols: Cols, group = 0): ChangeMessage {
  return { origin, group, sequence, namespace: "", seed, buckets: buckets(cols) };
}

/** A block of row 0 as a re-read returns it, tombstones as prob 0. */
function block(cols: Cols): RowPartRead {
  return { namespace: "", seed, buckets: buckets(cols) };
}

function relay() {
  const delivered: BucketState[][] = [];
  const rereads: number[] = [];
  const r = new Relay({
    replicaId: "me",
    deliver: (namespace, s, out) => {
      expect(namespace).toBe("");
      expect(s).toBe(seed);
      delivered.push(out);
    },
    reread: (group) => rereads.push(group),
  });
  /** The latest value delivered per column, as a client would hold it. */
  const view = () => {
    const out = new Map<number, number>();
    for (const batch of delivered) for (const b of batch) out.set(b.colId, b.prob);
    return Object.fromEntries(out);
  };
  /** Every delivery as [column, prob] pairs, in order. */
  const batches = () => delivered.map((batch) => batch.map((b) => [b.colId, b.prob]));
  return { r, delivered, rereads, view, batches };
}

describe("the relay", () => {
  test("another replica's messages are delivered in sequence order", () => {
    const { r, view, batches } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(
      change("other", 2, [
        [1, 0.2],
        [2, 0.5],
      ]),
    );
    r.received(change("other", 3, [[1, 0.3]]));
    expect(batches()).toEqual([
      [[1, 0.1]],
      [
        [1, 0.2],
        [2, 0.5],
      ],
      [[1, 0.3]],
    ]);
    expect(view()).toEqual({ 1: 0.3, 2: 0.5 });
    expect(r.counters).toEqual({
      messagesReceived: 3,
      bucketsRelayed: 4,
      gaps: 0,
      rowsReread: 0,
      badMessages: 0,
    });
  });

  test("an own call is delivered exactly once, whether its reply or its echo comes first", () => {
    const replyFirst = relay();
    replyFirst.r.received(change("other", 1, [[1, 0.1]]));
    replyFirst.r.own(change("me", 2, [[1, 0.2]]));
    replyFirst.r.received(change("me", 2, [[1, 0.2]]));
    expect(replyFirst.batches()).toEqual([[[1, 0.1]], [[1, 0.2]]]);
    // The echo is not another replica's message, nor are its buckets relayed.
    expect(replyFirst.r.counters).toMatchObject({ messagesReceived: 1, bucketsRelayed: 1 });

    const echoFirst = relay();
    echoFirst.r.received(change("other", 1, [[1, 0.1]]));
    echoFirst.r.received(change("me", 2, [[1, 0.2]]));
    echoFirst.r.own(change("me", 2, [[1, 0.2]]));
    expect(echoFirst.batches()).toEqual([[[1, 0.1]], [[1, 0.2]]]);
    expect(echoFirst.r.counters).toMatchObject({ messagesReceived: 1, bucketsRelayed: 1 });

    // The reply before anything of the group was seen, then its echo.
    const firstSight = relay();
    firstSight.r.own(change("me", 1, [[1, 0.1]]));
    firstSight.r.received(change("me", 1, [[1, 0.1]]));
    firstSight.r.received(change("other", 2, [[1, 0.2]]));
    expect(firstSight.batches()).toEqual([[[1, 0.1]], [[1, 0.2]]]);
    expect(firstSight.rereads).toEqual([]);

    // The reply while the group is re-read, its echo held meanwhile.
    const duringReread = relay();
    duringReread.r.received(change("other", 1, [[1, 0.1]]));
    duringReread.r.received(change("other", 3, [[1, 0.3]]));
    duringReread.r.received(change("me", 4, [[2, 0.4]]));
    duringReread.r.own(change("me", 4, [[2, 0.4]]));
    duringReread.r.rereadDone(0, 3, [block([[1, 0.3]])]);
    expect(duringReread.batches()).toEqual([[[1, 0.1]], [[2, 0.4]], [[1, 0.3]]]);
  });

  test("an older message still on its way never overwrites buckets of a newer own reply", () => {
    const { r, view, batches, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    // Our script ran after the other replica's sequence 2; our reply came first.
    r.own(change("me", 3, [[1, 0.3]]));
    r.received(
      change("other", 2, [
        [1, 0.2],
        [2, 0.5],
      ]),
    );
    r.received(change("me", 3, [[1, 0.3]]));
    expect(batches()).toEqual([[[1, 0.1]], [[1, 0.3]], [[2, 0.5]]]);
    expect(view()).toEqual({ 1: 0.3, 2: 0.5 });
    expect(rereads).toEqual([]);
    expect(r.counters).toMatchObject({ gaps: 0, bucketsRelayed: 2 });
    // Once the echo came, the bucket is no longer held back from newer messages.
    r.received(change("other", 4, [[1, 0.4]]));
    expect(view()).toEqual({ 1: 0.4, 2: 0.5 });
  });

  test.each([
    ["the older is the next sequence", 1, [3, 2]],
    ["both are ahead of the channel", 1, [4, 3]],
  ] as const)("own replies that come out of order never go back in time (%s)", (_, last, order) => {
    // Two calls of this replica on one group, from two concurrent updates:
    // the later call's update settled first, so its reply is handed on first.
    const { r, view } = relay();
    r.received(change("other", last, [[1, 0.1]]));
    const [newer, older] = order;
    r.own(change("me", newer, [[1, newer / 10]]));
    r.own(change("me", older, [[1, older / 10]]));
    expect(view()).toEqual({ 1: newer / 10 });
    for (let sequence = last + 1; sequence <= newer; sequence++) {
      r.received(change(sequence === older || sequence === newer ? "me" : "other", sequence, []));
    }
    expect(view()).toEqual({ 1: newer / 10 });
  });

  test("a sequence jump is a gap: the group is re-read, then the held message follows", () => {
    const { r, rereads, batches, view } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 4, [[1, 0.4]]));
    // Counted, the group asked for, and the message held back for the read.
    expect(r.counters.gaps).toBe(1);
    expect(rereads).toEqual([0]);
    expect(batches()).toEqual([[[1, 0.1]]]);
    // The group read back at 3 (before the held message): the read first, then it.
    r.rereadDone(0, 3, [
      block([
        [1, 0.3],
        [2, 0],
      ]),
    ]);
    expect(batches()).toEqual([
      [[1, 0.1]],
      [
        [1, 0.3],
        [2, 0],
      ],
      [[1, 0.4]],
    ]);
    // The channel goes on from there.
    r.received(change("other", 5, [[1, 0.5]]));
    expect(view()).toEqual({ 1: 0.5, 2: 0 });
    expect(rereads).toEqual([0]);
    expect(r.counters).toMatchObject({
      messagesReceived: 3,
      gaps: 1,
      rowsReread: 1,
      bucketsRelayed: 5,
    });
  });

  test("messages arriving during a re-read are held, then those newer than the read released in order", () => {
    const { r, rereads, batches, view } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    r.received(change("other", 4, [[2, 0.4]]));
    r.received(change("other", 5, [[1, 0.5]]));
    r.received(change("other", 6, [[2, 0.6]]));
    r.received(change("other", 7, [[1, 0.7]]));
    expect(batches()).toEqual([[[1, 0.1]]]);
    expect(rereads).toEqual([0]);
    // Read at 5: messages 3, 4 and 5 are in it; 6 and 7 follow, in order.
    r.rereadDone(0, 5, [
      block([
        [1, 0.5],
        [2, 0.4],
      ]),
    ]);
    expect(batches()).toEqual([
      [[1, 0.1]],
      [
        [1, 0.5],
        [2, 0.4],
      ],
      [[2, 0.6]],
      [[1, 0.7]],
    ]);
    expect(view()).toEqual({ 1: 0.7, 2: 0.6 });
    expect(r.counters).toMatchObject({ gaps: 1, messagesReceived: 6 });
  });

  test("a re-read does not undo an own reply newer than it", () => {
    const { r, view, batches, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    r.own(change("me", 5, [[1, 0.5]]));
    expect(rereads).toEqual([0]);
    r.rereadDone(0, 4, [
      block([
        [1, 0.4],
        [2, 0.4],
      ]),
    ]);
    expect(view()).toEqual({ 1: 0.5, 2: 0.4 });
    // The echo, after the read: not delivered again.
    r.received(change("me", 5, [[1, 0.5]]));
    expect(batches()).toEqual([[[1, 0.1]], [[1, 0.5]], [[2, 0.4]]]);
    expect(rereads).toEqual([0]);
    expect(r.counters.gaps).toBe(1);
  });

  test("a second gap while the held messages are released starts another re-read", () => {
    const { r, rereads, batches } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    r.received(change("other", 7, [[1, 0.7]]));
    r.received(change("other", 8, [[1, 0.8]]));
    // Read at 5: 3 is in it, 7 jumps from 5.
    r.rereadDone(0, 5, [block([[1, 0.5]])]);
    expect(rereads).toEqual([0, 0]);
    expect(r.counters.gaps).toBe(2);
    expect(batches()).toEqual([[[1, 0.1]], [[1, 0.5]]]);
    // Still held, with what comes meanwhile, until the second read.
    r.received(change("other", 9, [[1, 0.9]]));
    r.rereadDone(0, 7, [block([[1, 0.7]])]);
    expect(batches()).toEqual([[[1, 0.1]], [[1, 0.5]], [[1, 0.7]], [[1, 0.8]], [[1, 0.9]]]);
    expect(r.counters).toMatchObject({ gaps: 2, rowsReread: 2 });
  });

  test("a failed re-read forgets the sequence, so the next message starts afresh", () => {
    // After a resync whose read failed: any sequence is taken as the next.
    const resynced = relay();
    resynced.r.received(change("other", 1, [[1, 0.1]]));
    resynced.r.resync(1);
    resynced.r.rereadFailed(0);
    resynced.r.received(change("other", 10, [[1, 1]]));
    resynced.r.received(change("other", 11, [[1, 0.11]]));
    expect(resynced.batches()).toEqual([[[1, 0.1]], [[1, 1]], [[1, 0.11]]]);
    expect(resynced.r.counters.gaps).toBe(0);
    expect(resynced.rereads).toEqual([0]);

    // After a gap whose read failed: the held messages start afresh.
    const gapped = relay();
    gapped.r.received(change("other", 1, [[1, 0.1]]));
    gapped.r.received(change("other", 3, [[1, 0.3]]));
    gapped.r.received(change("other", 4, [[1, 0.4]]));
    gapped.r.rereadFailed(0);
    expect(gapped.batches()).toEqual([[[1, 0.1]], [[1, 0.3]], [[1, 0.4]]]);
    gapped.r.received(change("other", 5, [[1, 0.5]]));
    expect(gapped.view()).toEqual({ 1: 0.5 });
    expect(gapped.r.counters).toMatchObject({ gaps: 1, rowsReread: 0 });
    // A read that comes in after it failed is not asked for any more: ignored.
    gapped.r.rereadDone(0, 2, [block([[1, 0.2]])]);
    expect(gapped.view()).toEqual({ 1: 0.5 });
    expect(gapped.rereads).toEqual([0]);
  });

  test("after reset() (Redis lost its data) sequences may start again from 1", () => {
    const { r, view, rereads } = relay();
    r.received(change("other", 9, [[1, 0.9]]));
    r.reset();
    r.received(change("other", 1, [[1, 0.1]]));
    expect(view()).toEqual({ 1: 0.1 });
    r.received(change("other", 2, [[1, 0.2]]));
    expect(view()).toEqual({ 1: 0.2 });
    expect(rereads).toEqual([]);
    expect(r.counters.gaps).toBe(0);
  });

  test("a re-read answered after reset() is ignored, and its held messages dropped", () => {
    const { r, view, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    expect(rereads).toEqual([0]);
    r.reset();
    r.rereadDone(0, 3, [block([[1, 0.3]])]);
    expect(view()).toEqual({ 1: 0.1 });
    r.received(change("other", 1, [[1, 0.01]]));
    expect(view()).toEqual({ 1: 0.01 });
    expect(r.counters).toMatchObject({ gaps: 1, rowsReread: 0 });
  });

  test("groups are independent: a gap in one group does not hold another's messages", () => {
    const { r, rereads, batches } = relay();
    r.received(change("other", 1, [[1, 0.1]], 1));
    r.received(change("other", 3, [[1, 0.3]], 1));
    expect(rereads).toEqual([1]);
    // Group 0 has its own sequence, from 1, delivered while group 1 is re-read.
    r.received(change("other", 1, [[2, 0.01]], 0));
    r.received(change("other", 2, [[2, 0.02]], 0));
    r.own(change("me", 3, [[3, 0.03]], 0));
    expect(batches()).toEqual([[[1, 0.1]], [[2, 0.01]], [[2, 0.02]], [[3, 0.03]]]);
    // Group 1's read releases group 1 only; group 0 goes on in its own sequence.
    r.rereadDone(1, 2, [block([[1, 0.2]])]);
    r.received(change("other", 4, [[2, 0.04]], 0));
    expect(batches()).toEqual([
      [[1, 0.1]],
      [[2, 0.01]],
      [[2, 0.02]],
      [[3, 0.03]],
      [[1, 0.2]],
      [[1, 0.3]],
      [[2, 0.04]],
    ]);
    expect(rereads).toEqual([1]);
    expect(r.counters.gaps).toBe(1);
  });

  test("resync(n) re-reads every group and holds each group's messages until its read is done", () => {
    const { r, rereads, batches } = relay();
    r.received(change("other", 1, [[1, 0.1]], 0));
    r.resync(3);
    expect(rereads).toEqual([0, 1, 2]);
    // A resync while the reads are out asks no more.
    r.resync(3);
    expect(rereads).toEqual([0, 1, 2]);
    r.received(change("other", 2, [[1, 0.2]], 0));
    r.received(change("other", 5, [[2, 0.5]], 1));
    r.received(change("other", 1, [[3, 0.1]], 2));
    expect(batches()).toEqual([[[1, 0.1]]]);
    // Each read releases its own group's messages.
    r.rereadDone(1, 4, [block([[2, 0.4]])]);
    expect(batches()).toEqual([[[1, 0.1]], [[2, 0.4]], [[2, 0.5]]]);
    r.rereadDone(2, 1, [block([[3, 0.1]])]);
    expect(batches()).toEqual([[[1, 0.1]], [[2, 0.4]], [[2, 0.5]], [[3, 0.1]]]);
    r.rereadDone(0, 1, []);
    expect(batches()).toEqual([[[1, 0.1]], [[2, 0.4]], [[2, 0.5]], [[3, 0.1]], [[1, 0.2]]]);
    // No gap: the jumps were caught by the reads.
    expect(r.counters).toMatchObject({ gaps: 0, rowsReread: 2 });
  });

  test("a message that does not parse is counted and ignored", () => {
    const { r, delivered, rereads } = relay();
    r.received(undefined);
    expect(delivered).toEqual([]);
    expect(rereads).toEqual([]);
    expect(r.counters).toEqual({
      messagesReceived: 0,
      bucketsRelayed: 0,
      gaps: 0,
      rowsReread: 0,
      badMessages: 1,
    });
  });

  test("a re-read behind what was seen (Redis lost writes) is taken as the truth", () => {
    const { r, view, rereads } = relay();
    for (let sequence = 1; sequence <= 5; sequence++) {
      r.received(change("other", sequence, [[1, sequence / 10]]));
    }
    // A failover to a replica that had not got sequences 3..5.
    r.resync(1);
    r.rereadDone(0, 2, [block([[1, 0.2]])]);
    expect(view()).toEqual({ 1: 0.2 });
    // The group's new writes continue from the read's sequence: no gap, none skipped.
    r.received(change("other", 3, [[1, 0.33]]));
    expect(view()).toEqual({ 1: 0.33 });
    r.received(change("other", 4, [[1, 0.44]]));
    expect(view()).toEqual({ 1: 0.44 });
    expect(rereads).toEqual([0]);
    expect(r.counters.gaps).toBe(0);
  });
});
