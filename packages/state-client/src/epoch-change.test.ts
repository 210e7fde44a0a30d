// Learning mode, the client's side (docs/design.md §8): a reconnected stream that shows a new
// `fair-state-epoch` makes the listeners offer what they hold before anything of the stream
// is delivered; the offers go out before the repeated StateRequests; replies that predate the
// offers are dropped.
import { Code, ConnectError } from "@connectrpc/connect";
import { EPOCH_HEADER } from "@fair/state-proto";
import { afterEach, describe, expect, test } from "vitest";
import {
  closeClients,
  connected,
  type FakeServer,
  offered,
  restart,
  seed0,
  settle,
  start,
  t0,
  windowMs,
  wireBucket,
} from "../test/fake-sync-server.js";
import type { BucketValue, StateClient } from "./index.js";

afterEach(closeClients);

const seed1 = seed0 + BigInt(windowMs);

/** Whether `stream` has received an offer yet: the fake's stand-in for "the server merged it". */
const offersIn = (server: FakeServer, stream: number) =>
  server.streams[stream]?.received.some((r) => r.request.case === "stateOffer") ?? false;

/** A client connected to a server of epoch "e1". */
async function connectedToEpoch1(options: Parameters<typeof start>[0] = {}) {
  const started = start(options);
  started.server.headers[EPOCH_HEADER] = "e1";
  await connected(started.client, started.server);
  return started;
}

/** A listener that offers `view` on every epoch change and logs what it is told, in order. */
function offeringListener(client: StateClient, view: Map<bigint, BucketValue[]>) {
  const log: string[] = [];
  client.subscribe({
    onEpochChange: (epoch, previous) => {
      log.push(`epoch ${previous} → ${epoch}`);
      for (const [seed, buckets] of view) client.offerState(seed, buckets);
    },
    onStateUpdate: (seed, buckets, fullState) =>
      log.push(
        `${fullState ? "full" : "broadcast"} ${seed === seed0 ? "s0" : "s1"} [${buckets.map((b) => b.prob).join(", ")}]`,
      ),
  });
  return log;
}

describe("a new epoch", () => {
  test("calls every listener's onEpochChange before anything of the new stream is delivered, then emits epochChange", async () => {
    const { server, time, client } = await connectedToEpoch1();
    const log = offeringListener(client, new Map());
    client.on("epochChange", (epoch, previous) => log.push(`event ${previous} → ${epoch}`));
    // The restarted server's first message is a broadcast, ahead of any reply.
    server.onStream = (stream) => stream.send({ seed: seed0, buckets: [wireBucket(7, 0.25)] });
    server.reply = () => [wireBucket(1, 0.5)];
    await restart(server, time, client, "e2");
    await server.until(() => server.kinds(1).filter((k) => k.startsWith("request")).length === 2);
    await settle();
    expect(log).toEqual([
      "epoch e1 → e2",
      "event e1 → e2",
      "broadcast s0 [0.25]", // newer than anything: delivered as usual
      "full s0 [0.5]", // the reply to the repeated request only
    ]);
    expect(client.stats()).toMatchObject({ epoch: "e2", epochChanges: 1, staleRepliesDropped: 1 });
  });

  test("sends the offers before the repeated StateRequests, split at maxDeltasPerMessage, then what waited", async () => {
    const { server, time, client } = await connectedToEpoch1({ maxDeltasPerMessage: 2 });
    await client.requestFullState(seed1);
    offeringListener(
      client,
      new Map([
        [seed0, offered(5)],
        [seed1, offered(1, 40)],
      ]),
    );
    const lost = new Promise<void>((resolve) => client.on("disconnected", () => resolve()));
    server.streams[0]?.fail(new ConnectError("restarting", Code.Unavailable));
    await lost;
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 9, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    server.headers[EPOCH_HEADER] = "e2";
    time.tick(100);
    await server.until(() => server.kinds(1).includes("delta ×1"));
    expect(server.kinds(1)).toEqual([
      `request ${seed1}`, // sent on opening, before the epoch was known: its reply is dropped
      `offer ${seed0} ×2`,
      `offer ${seed0} ×2`,
      `offer ${seed0} ×1`,
      `offer ${seed1} ×1`,
      `request ${seed1}`,
      "delta ×1",
    ]);
    const offers = server.streams[1]?.received.flatMap((r) =>
      r.request.case === "stateOffer" ? r.request.value.buckets : [],
    );
    // As held: absolute values as of their own times, never decayed on the way.
    expect(offers?.[0]).toMatchObject({
      rowId: 0n,
      colId: 0n,
      prob: 0.5,
      lastUpdateTimeMs: BigInt(t0),
    });
    expect(client.stats()).toMatchObject({
      offersSent: { messages: 4, buckets: 6 },
      epochChanges: 1,
      deltasSent: 1,
    });
  });

  test("a bucket with adjustments still held is offered net of them, and they follow as deltas: each outcome counts once", async () => {
    const decay = 0.01 / 1000;
    const { server, time, client } = await connectedToEpoch1();
    const view: BucketValue[] = [
      { rowId: 0, colId: 9, prob: 0.5, lastUpdateTimeMs: t0 + 1_000 },
      { rowId: 0, colId: 8, prob: 0.3, lastUpdateTimeMs: t0 },
    ];
    offeringListener(client, new Map([[seed0, view]]));
    const lost = new Promise<void>((resolve) => client.on("disconnected", () => resolve()));
    server.streams[0]?.fail(new ConnectError("restarting", Code.Unavailable));
    await lost;
    // Held through the outage: two outcomes on col 9 (the view holds them already), one
    // success on col 8 whose time is later than the view's.
    client.sendDeltaUpdate(seed0, [
      { rowId: 0, colId: 9, deltaProb: 0.04, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 9, deltaProb: 0.04, lastUpdateTimeMs: t0 + 1_000 },
      { rowId: 0, colId: 8, deltaProb: -0.001, lastUpdateTimeMs: t0 + 2_000 },
    ]);
    server.headers[EPOCH_HEADER] = "e2";
    time.tick(100);
    await server.until(() => server.kinds(1).includes("delta ×2"));
    const offers = server.streams[1]?.received.flatMap((r) =>
      r.request.case === "stateOffer" ? r.request.value.buckets : [],
    );
    const held9 = 0.04 * Math.exp(-decay * 1_000) + 0.04;
    expect(offers?.[0]).toMatchObject({ colId: 9n, lastUpdateTimeMs: BigInt(t0 + 1_000) });
    expect(offers?.[0]?.prob).toBeCloseTo(0.5 - held9, 15);
    // Taken to the later time, the success added back: the view before it.
    expect(offers?.[1]).toMatchObject({ colId: 8n, lastUpdateTimeMs: BigInt(t0 + 2_000) });
    expect(offers?.[1]?.prob).toBeCloseTo(0.3 * Math.exp(-decay * 2_000) + 0.001, 15);
    expect(server.kinds(1).indexOf("delta ×2")).toBeGreaterThan(
      server.kinds(1).indexOf(`offer ${seed0} ×2`),
    );
  });

  test("replies to requests sent before the offers are dropped; requestFullState resolves with the reply after them", async () => {
    const { server, time, client } = await connectedToEpoch1();
    await client.requestFullState(seed0);
    const log = offeringListener(client, new Map([[seed0, offered(1)]]));
    // Before the offers the restarted server has little; after them it holds the merged view.
    server.reply = (_seed, stream) =>
      stream.received.some((r) => r.request.case === "stateOffer")
        ? [wireBucket(0, 0.5)]
        : [wireBucket(0, 0.01)];
    const lost = new Promise<void>((resolve) => client.on("disconnected", () => resolve()));
    server.streams[0]?.fail(new ConnectError("restarting", Code.Unavailable));
    await lost;
    // Asked for while disconnected: it goes out on opening, before the epoch is known.
    const reply = client.requestFullState(seed1);
    server.headers[EPOCH_HEADER] = "e2";
    time.tick(100);
    expect((await reply).map((b) => b.prob)).toEqual([0.5]);
    await server.until(() => server.kinds(1).filter((k) => k.startsWith("request")).length === 4);
    await settle();
    expect(log).toEqual(["epoch e1 → e2", "full s0 [0.5]", "full s1 [0.5]"]);
    expect(client.stats()).toMatchObject({ staleRepliesDropped: 2, epoch: "e2" });
    expect(offersIn(server, 1)).toBe(true);
  });

  test("the first connection, a reconnection to the same epoch and one to a server that sends none do not call onEpochChange", async () => {
    const { server, time, client } = await connectedToEpoch1();
    const log = offeringListener(client, new Map([[seed0, offered(3)]]));
    await restart(server, time, client, "e1");
    await restart(server, time, client, undefined);
    await restart(server, time, client, "e1");
    await settle();
    expect(log.filter((line) => line.startsWith("epoch"))).toEqual([]);
    expect(server.streams.every((_, i) => !offersIn(server, i))).toBe(true);
    expect(client.stats()).toMatchObject({
      epoch: "e1",
      epochChanges: 0,
      offersSent: { messages: 0, buckets: 0 },
      staleRepliesDropped: 0,
    });
  });

  test("a stream lost before the server answered after the offers leaves the epoch unconfirmed: the next stream offers again", async () => {
    const { server, time, client } = await connectedToEpoch1();
    const log = offeringListener(client, new Map([[seed0, offered(1)]]));
    // Stream 1 shows e2 with a broadcast, takes the offers, and dies before any reply.
    server.answerStateRequests = false;
    server.onStream = (stream) => stream.send({ seed: seed0, buckets: [] });
    await restart(server, time, client, "e2");
    await server.until(() => offersIn(server, 1));
    expect(client.stats().epoch).toBe("e1");
    server.answerStateRequests = true;
    server.onStream = undefined;
    await restart(server, time, client, "e2");
    await server.until(() => offersIn(server, 2));
    await settle();
    expect(client.stats()).toMatchObject({ epoch: "e2", epochChanges: 2 });
    await restart(server, time, client, "e2");
    await settle();
    expect(log.filter((line) => line.startsWith("epoch"))).toEqual([
      "epoch e1 → e2",
      "epoch e1 → e2",
    ]);
    expect(offersIn(server, 3)).toBe(false);
  });
});

describe("offerState", () => {
  test("outside an epoch change sends nothing and counts the buckets as not asked", async () => {
    const { server, client } = await connectedToEpoch1();
    client.offerState(seed0, offered(3));
    client.sendDeltaUpdate(seed0, [{ rowId: 0, colId: 1, deltaProb: 0.04, lastUpdateTimeMs: t0 }]);
    await client.close();
    expect(offersIn(server, 0)).toBe(false);
    client.offerState(seed0, offered(2));
    expect(client.stats().offerBucketsDropped).toEqual({ invalid: 0, not_asked: 5 });
  });

  test("leaves unusable buckets out and counts them, never throwing", async () => {
    const { server, time, client } = await connectedToEpoch1();
    const ok = { rowId: 0, colId: 1, prob: 0.5, lastUpdateTimeMs: t0 };
    client.subscribe({
      onEpochChange: () => {
        client.offerState(seed0, [
          ok,
          { ...ok, prob: 1.5 },
          { ...ok, prob: Number.NaN },
          { ...ok, rowId: -1 },
          { ...ok, colId: 0.5 },
          { ...ok, lastUpdateTimeMs: Number.POSITIVE_INFINITY },
        ]);
        client.offerState(-1n, [ok]);
        client.offerState(seed1, []);
      },
    });
    await restart(server, time, client, "e2");
    await server.until(() => offersIn(server, 1));
    expect(server.kinds(1).filter((k) => k.startsWith("offer"))).toEqual([`offer ${seed0} ×1`]);
    expect(client.stats().offerBucketsDropped).toEqual({ invalid: 6, not_asked: 0 });
  });
});
