// The relay's ordering rules, driven by hand: no Redis, every interleaving
// of replies, echoes and other replicas' messages chosen by the test.
import type { BucketState } from "@fair/state-store";
import { describe, expect, test } from "vitest";
import type { ChangeMessage } from "./message.js";
import { Relay, type RowRef } from "./relay.js";

const seed = 1_764_136_800_000n;

function change(origin: string, version: number, cols: [number, number][]): ChangeMessage {
  return {
    origin,
    namespace: "",
    seed,
    rows: [
      {
        row: 0,
        version,
        buckets: cols.map(([colId, prob]) => ({ rowId: 0, colId, prob, lastUpdateTimeMs: 1 })),
      },
    ],
  };
}

function relay() {
  const delivered: BucketState[][] = [];
  const rereads: RowRef[][] = [];
  const r = new Relay({
    replicaId: "me",
    deliver: (_ns, _seed, buckets) => delivered.push(buckets),
    reread: (rows) => rereads.push([...rows]),
  });
  /** The latest value delivered per column, as a client would hold it. */
  const view = () => {
    const out = new Map<number, number>();
    for (const batch of delivered) for (const b of batch) out.set(b.colId, b.prob);
    return Object.fromEntries(out);
  };
  return { r, delivered, rereads, view };
}

describe("the relay", () => {
  test("another replica's messages are delivered in version order", () => {
    const { r, view } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 2, [[1, 0.2]]));
    expect(view()).toEqual({ 1: 0.2 });
    expect(r.counters).toMatchObject({ messagesReceived: 2, bucketsRelayed: 2, gaps: 0 });
  });

  test("an own update is delivered once, whether its reply or its echo comes first", () => {
    const replyFirst = relay();
    replyFirst.r.received(change("other", 1, [[1, 0.1]]));
    replyFirst.r.own(change("me", 2, [[1, 0.2]]));
    replyFirst.r.received(change("me", 2, [[1, 0.2]]));
    expect(replyFirst.delivered).toHaveLength(2);

    const echoFirst = relay();
    echoFirst.r.received(change("other", 1, [[1, 0.1]]));
    echoFirst.r.received(change("me", 2, [[1, 0.2]]));
    echoFirst.r.own(change("me", 2, [[1, 0.2]]));
    expect(echoFirst.delivered).toHaveLength(2);
    expect(echoFirst.view()).toEqual({ 1: 0.2 });
  });

  test("an older message still on its way never overwrites a newer own update", () => {
    const { r, view, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    // Our script ran after the other replica's version 2; our reply came first.
    r.own(change("me", 3, [[1, 0.3]]));
    r.received(
      change("other", 2, [
        [1, 0.2],
        [2, 0.5],
      ]),
    );
    r.received(change("me", 3, [[1, 0.3]]));
    expect(view()).toEqual({ 1: 0.3, 2: 0.5 });
    expect(rereads).toEqual([]);
  });

  test("a version jump means lost messages: the row is re-read and delivered whole", () => {
    const { r, view, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 4, [[1, 0.4]]));
    expect(rereads).toEqual([[expect.objectContaining({ namespace: "", seed, row: 0 })]]);
    // Messages for the row while the re-read is out are left to it.
    r.received(change("other", 5, [[1, 0.5]]));
    const ref = rereads[0]?.[0] as RowRef;
    r.rereadDone(ref, 5, [
      { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: 1 },
      { rowId: 0, colId: 2, prob: 0, lastUpdateTimeMs: 1 },
    ]);
    expect(view()).toEqual({ 1: 0.5, 2: 0 });
    r.received(change("other", 6, [[1, 0.6]]));
    expect(view()).toEqual({ 1: 0.6, 2: 0 });
    expect(r.counters).toMatchObject({ gaps: 1, rowsReread: 1 });
  });

  test("a re-read older than what arrived meanwhile is followed by another", () => {
    const { r, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    r.received(change("other", 7, [[1, 0.7]]));
    r.rereadDone(rereads[0]?.[0] as RowRef, 5, []);
    expect(rereads).toHaveLength(2);
  });

  test("a re-read does not undo an own update newer than it", () => {
    const { r, view, rereads } = relay();
    r.received(change("other", 1, [[1, 0.1]]));
    r.received(change("other", 3, [[1, 0.3]]));
    r.own(change("me", 5, [[1, 0.5]]));
    r.rereadDone(rereads[0]?.[0] as RowRef, 4, [
      { rowId: 0, colId: 1, prob: 0.4, lastUpdateTimeMs: 1 },
    ]);
    expect(view()).toEqual({ 1: 0.5 });
  });

  test("a message that does not parse is counted and ignored", () => {
    const { r, delivered } = relay();
    r.received(undefined);
    expect(delivered).toEqual([]);
    expect(r.counters.badMessages).toBe(1);
  });

  test("after a reset (Redis lost its data) versions may start again from 1", () => {
    const { r, view } = relay();
    r.received(change("other", 9, [[1, 0.9]]));
    r.reset();
    r.received(change("other", 1, [[1, 0.1]]));
    expect(view()).toEqual({ 1: 0.1 });
  });
});
