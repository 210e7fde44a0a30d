// Stream churn against one server, in this process so its heap and handles
// can be measured: 1,000 concurrent Sync streams, half gRPC and half
// gRPC-Web (the server's two paths), that keep opening and ending —
// gracefully, by reset, mid-reply, with bad input, and with whole
// connections closed or dropped — for 60 s. Afterwards the open-stream
// gauges are 0, every server-side session and (sampled) stream subscription
// has been garbage-collected, and the heap, the sockets and the server's
// timers are back where they were: nothing per stream or per connection
// stays behind.
import { once } from "node:events";
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { toBinary } from "@bufbuild/protobuf";
import { NAMESPACE_HEADER, SyncRequestSchema } from "@fair/state-proto";
import { afterAll, expect, test } from "vitest";
import {
  deltaUpdate,
  grpcFrame,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";
import { activeResources, heldBytes, settled, watchCollection } from "./leak-check.js";

/** Streams open at once: 20 connections × 50, under the default 100 streams per connection. */
const slots = 1_000;
const connections = 20;
/** A connection is replaced after this many streams, alternately closed and destroyed. */
const streamsPerConnection = 500;
/** Churn before the baseline (JIT, lazily built server state), then churn measured: 60 s in all. */
const warmUpMs = 10_000;
const churnMs = 50_000;
/** One hub subscription (one per stream) in this many is watched for collection. */
const sampleEvery = 10;
/** Namespaces the streams spread over: the hub creates and drops each one as streams come and go. */
const namespaces = 10;

let server: TestServer | undefined;
const sessions = new Set<ClientHttp2Session>();
afterAll(async () => {
  for (const session of sessions) session.destroy();
  await server?.close();
});

const frames = {
  stateRequest: grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0))),
  delta: (col: number) =>
    grpcFrame(toBinary(SyncRequestSchema, deltaUpdate(seed0, [[0, col, 0.001, t0]]))),
  garbage: Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]),
};

/** gRPC Sync streams may take a path of their own; gRPC-Web ones go through Connect. */
type Protocol = "grpc" | "grpc-web";

/** How a stream ends; each slot cycles through them. */
const kinds = [
  "graceful", // a StateRequest, half-close, the reply and OK
  "reset-after-reply", // subscribed: a StateRequest, then RST_STREAM once the reply arrives
  "reset-at-once", // RST_STREAM right after opening
  "delta", // a DeltaUpdate (broadcast to the namespace's streams), half-close
  "malformed", // bytes that are not a SyncRequest: an error status
  "empty", // half-close without a message
] as const;

interface Churn {
  readonly pool: Connections;
  opened: number;
  readonly byStatus: Map<string, number>;
}

/** Connections shared by the slots; each is replaced after `streamsPerConnection` streams. */
class Connections {
  readonly #baseUrl: string;
  readonly #live: ClientHttp2Session[] = [];
  readonly #opened: number[] = [];
  readonly #closed: Promise<unknown>[] = [];
  replaced = 0;

  constructor(baseUrl: string) {
    this.#baseUrl = baseUrl;
    for (let i = 0; i < connections; i++) this.#live.push(this.#open());
    this.#opened = new Array(connections).fill(0);
  }

  stream(group: number, namespace: string, protocol: Protocol): ClientHttp2Stream {
    let session = this.#live[group] as ClientHttp2Session;
    if (++(this.#opened[group] as number) > streamsPerConnection) {
      // The old connection goes, with whatever streams it still carries.
      const old = session;
      if (this.replaced++ % 2 === 0) old.close();
      else old.destroy();
      session = this.#open();
      this.#live[group] = session;
      this.#opened[group] = 1;
    }
    const stream = session.request({
      ":method": "POST",
      ":path": "/fair.state.v1.StateService/Sync",
      "content-type": `application/${protocol}+proto`,
      te: "trailers",
      [NAMESPACE_HEADER]: namespace,
    });
    stream.on("error", () => {});
    return stream;
  }

  /** Closes every connection; resolves once all are closed. */
  async close(): Promise<void> {
    for (const session of this.#live) session.close();
    await Promise.all(this.#closed);
  }

  #open(): ClientHttp2Session {
    const session = connect(this.#baseUrl);
    session.on("error", () => {});
    sessions.add(session);
    this.#closed.push(once(session, "close").then(() => sessions.delete(session)));
    return session;
  }
}

/**
 * Runs one stream of `kind` to its end; resolves with the grpc-status it
 * got, "reset" for the ones the test reset, "refused" for REFUSED_STREAM,
 * or "none".
 */
async function runStream(stream: ClientHttp2Stream, kind: (typeof kinds)[number], col: number) {
  let status = "";
  stream.on("response", (headers) => {
    status = String(headers["grpc-status"] ?? status);
  });
  stream.on("trailers", (trailers) => {
    status = String(trailers["grpc-status"] ?? status);
  });
  // gRPC-Web sends its status in a last frame of the body (flag 0x80).
  const body: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => body.push(chunk));
  // Not once(): it rejects on "error", and a refused or reset stream emits one before "close".
  const closed = new Promise((resolve) => stream.once("close", resolve));
  switch (kind) {
    case "graceful":
      stream.end(frames.stateRequest);
      break;
    case "reset-after-reply":
      stream.write(frames.stateRequest);
      stream.once("data", () => stream.close(constants.NGHTTP2_CANCEL));
      break;
    case "reset-at-once":
      stream.close(constants.NGHTTP2_CANCEL);
      break;
    case "delta":
      stream.end(frames.delta(col));
      break;
    case "malformed":
      stream.end(frames.garbage);
      break;
    case "empty":
      stream.end();
      break;
  }
  await closed;
  if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) return "refused";
  if (kind === "reset-after-reply" || kind === "reset-at-once") return "reset";
  return status || webStatus(Buffer.concat(body)) || "none";
}

/** The grpc-status in a gRPC-Web body's trailer frame, or "". */
function webStatus(body: Buffer): string {
  for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
    if (((body[at] ?? 0) & 0x80) === 0) continue;
    const trailer = body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1)).toString();
    return /^grpc-status:\s*(\d+)/im.exec(trailer)?.[1] ?? "";
  }
  return "";
}

/** Churns streams in every slot of `pool` until `durationMs` has passed. */
async function churn(pool: Connections, durationMs: number): Promise<Churn> {
  const result: Churn = { pool, opened: 0, byStatus: new Map() };
  let stopping = false;
  const timer = setTimeout(() => {
    stopping = true;
  }, durationMs);
  try {
    await Promise.all(
      Array.from({ length: slots }, async (_, slot) => {
        for (let round = slot; !stopping; round++) {
          const kind = kinds[round % kinds.length] ?? "graceful";
          const protocol = slot % 2 === 0 ? "grpc" : "grpc-web";
          const stream = pool.stream(slot % connections, `ns-${slot % namespaces}`, protocol);
          result.opened++;
          const status = await runStream(stream, kind, slot % 16);
          const key = `${protocol}:${kind}:${status}`;
          result.byStatus.set(key, (result.byStatus.get(key) ?? 0) + 1);
        }
      }),
    );
  } finally {
    clearTimeout(timer);
  }
  return result;
}

/** What the server and the process hold when no stream is open. */
async function holdings(server: TestServer) {
  const running = server.running.server;
  return {
    bytes: await heldBytes(),
    resources: activeResources(),
    fakeTimers: server.time.activeTimers,
    store: await running.store.stats(),
  };
}

/** Closes `pool` and waits until the server has let go of every stream and connection. */
async function drain(server: TestServer, pool: Connections, baselineSockets: number) {
  await pool.close();
  const running = server.running.server;
  const state = async () => ({
    hub: running.hub.stats(),
    connectedClients: (await running.metrics.connectedClients.get()).values[0]?.value,
    sockets: activeResources()["TCPSocketWrap"] ?? 0,
  });
  let last = await state();
  await settled(
    async () => {
      last = await state();
      return (
        last.hub.subscribers === 0 && last.connectedClients === 0 && last.sockets <= baselineSockets
      );
    },
    "the server lets go of every stream and connection",
    10_000,
    () => last,
  );
  return last;
}

/** Kinds of handle whose count may differ by a little at the two readings: timers and immediates the test runner (not the server) has pending. */
const runnerTimers = new Set(["Timeout", "Immediate"]);

test("1,000 streams churning for 60 s: gauges back to 0, heap, sockets and timers back to the baseline", {
  timeout: 120_000,
}, async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
  process.on("warning", onWarning);
  try {
    server = await startServer();
    const baseUrl = `http://${server.running.grpcAddress}`;

    // Warm-up: the same churn, so the baseline already holds what is built
    // once (compiled code, the store's bounded set of buckets, metric series).
    // No socket of the test's was open before it.
    const warmUp = await churn(new Connections(baseUrl), warmUpMs);
    await drain(server, warmUp.pool, 0);
    const baseline = await holdings(server);

    const watched = watchCollection(server, sampleEvery);
    const measured = await churn(new Connections(baseUrl), churnMs);
    const quiet = await drain(server, measured.pool, baseline.resources["TCPSocketWrap"] ?? 0);
    const collected = await watched.stop();
    const after = await holdings(server);

    // It churned: streams of every kind, and connections replaced.
    expect(measured.opened).toBeGreaterThan(5_000);
    expect(measured.pool.replaced).toBeGreaterThan(0);
    // Every stream ended as its kind should: OK for the well-formed ones,
    // an error status for bad input. The exceptions are streams cut short by
    // the test replacing their connection: "none" (no status) when it
    // destroyed the connection, "refused" (HTTP/2 REFUSED_STREAM, before the
    // stream started) when it closed it. A slot has one stream at a time, so
    // a replacement cuts short at most its connection's share of the slots.
    const expected = (kind: string, status: string) => {
      if (kind.startsWith("reset")) return status === "reset";
      if (kind === "malformed") return /^[1-9]\d*$/.test(status);
      return status === "0";
    };
    const ended = [...measured.byStatus].map(([key, count]) => {
      const [protocol = "", kind = "", status = ""] = key.split(":");
      return { protocol, kind, status, count };
    });
    for (const protocol of ["grpc", "grpc-web"]) {
      for (const kind of kinds) {
        const asExpected = ended.filter(
          (e) => e.protocol === protocol && e.kind === kind && expected(kind, e.status),
        );
        expect(asExpected.length, `${protocol} ${kind}`).toBeGreaterThan(0);
      }
    }
    const unexpected = ended.filter(
      (e) => e.status !== "none" && e.status !== "refused" && !expected(e.kind, e.status),
    );
    expect(unexpected).toEqual([]);
    const cutShort = ended
      .filter((e) => e.status === "none" || e.status === "refused")
      .reduce((sum, e) => sum + e.count, 0);
    expect(cutShort).toBeLessThanOrEqual(measured.pool.replaced * (slots / connections));

    // Nothing per stream stays behind: the open-stream gauges are 0 …
    expect(quiet).toMatchObject({ hub: { subscribers: 0, namespaces: 0 }, connectedClients: 0 });
    // … every server-side session and every sampled stream's subscription
    // has been collected: nothing holds on to a finished one …
    expect(collected.sessions.watched).toBeGreaterThanOrEqual(connections);
    expect(collected.subscriptions.watched).toBeGreaterThan(measured.opened / sampleEvery / 2);
    expect(collected).toMatchObject({ sessions: { alive: 0 }, subscriptions: { alive: 0 } });
    // … every socket is closed, the server's timers are the same ones …
    const withoutRunnerTimers = (resources: Record<string, number>) =>
      Object.fromEntries(Object.entries(resources).filter(([kind]) => !runnerTimers.has(kind)));
    expect(withoutRunnerTimers(after.resources)).toEqual(withoutRunnerTimers(baseline.resources));
    for (const kind of runnerTimers) {
      expect(after.resources[kind] ?? 0, kind).toBeLessThanOrEqual(
        (baseline.resources[kind] ?? 0) + 2,
      );
    }
    expect(after.fakeTimers).toBe(baseline.fakeTimers);
    expect(after.store).toMatchObject({
      namespaces: baseline.store.namespaces,
      seeds: baseline.store.seeds,
      buckets: baseline.store.buckets,
    });
    // … and the heap after a full collection is where it was. Measured:
    // 0.15–0.85 MB more after 30,000–115,000 streams, all of it compiled
    // code and V8's own weak lists (heap snapshots show no JavaScript object
    // of the server's more). A leak of 40 bytes per stream — less than one
    // closure or Map entry — breaks 2 MiB at 50,000 streams.
    const growth = after.bytes - baseline.bytes;
    expect(
      growth,
      `heap grew ${growth} bytes over ${measured.opened} streams (${(growth / measured.opened).toFixed(1)} per stream)`,
    ).toBeLessThan(2 * 1024 * 1024);
    // "Possible EventTarget memory leak detected" would be a false alarm
    // in an operator's log, as the heap shows; there is none.
    expect(warnings).toEqual([]);
  } finally {
    process.off("warning", onWarning);
  }
});
