// What a sender can make the server hold, and for how long, on every path
// that serves Sync: the server's own gRPC path and connect-node's gRPC-Web
// and Connect protocols. A message still unfinished messageTimeoutMs after
// its first byte ends its stream; unfinished messages together stay within
// maxBufferedRequestBytes; a message over maxMessageBytes is refused at its
// prefix. Each ends its stream with RESOURCE_EXHAUSTED naming the key and
// resets it, so a client that keeps writing cannot keep it.
import { once } from "node:events";
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { SyncRequestSchema } from "@fair/state-proto";
import { Conditions } from "@fair/testing";
import type { Gauge } from "prom-client";
import { afterEach, describe, expect, test } from "vitest";
import {
  type DeltaTuple,
  deltaUpdate,
  grpcFrame,
  grpcProtobuf,
  grpcWebProtobuf,
  type MakeTransport,
  seed0,
  startServer,
  stateRequest,
  type TestServer,
  t0,
} from "./harness.js";

const KiB = 1024;
const MiB = 1024 * KiB;

let server: TestServer | undefined;
const sessions = new Set<ClientHttp2Session>();
afterEach(async () => {
  for (const session of sessions) session.destroy();
  sessions.clear();
  await server?.close();
  server = undefined;
});

const paths: [string, string][] = [
  ["gRPC (the server's own path)", "application/grpc+proto"],
  ["gRPC-Web (through Connect)", "application/grpc-web+proto"],
  ["the Connect protocol (through Connect)", "application/connect+proto"],
];

/** A raw HTTP/2 connection to the test server, destroyed after the test. */
async function rawConnection(): Promise<ClientHttp2Session> {
  const session = connect(`http://${server?.running.grpcAddress}`);
  session.on("error", () => {});
  sessions.add(session);
  await once(session, "remoteSettings");
  return session;
}

/** The status a stream ended with, whatever its protocol carries it in. */
interface Ended {
  readonly code: number | undefined;
  readonly message: string;
  /** The RST_STREAM code the server closed it with (NO_ERROR after a status). */
  readonly rstCode: number | undefined;
  /** Whether the stream closed while the client's side was still open: only a reset does that. */
  readonly aborted: boolean;
}

/** Connect's error codes, as the Connect protocol writes them. */
const connectCodes: Record<string, number> = { resource_exhausted: Code.ResourceExhausted };

/**
 * A Sync stream opened by hand, reading whatever comes back, and how it
 * ended: the status from gRPC's trailers, gRPC-Web's trailer frame (flag
 * 0x80) or the Connect protocol's end-of-stream message (flag 0x02).
 */
function rawStream(session: ClientHttp2Session, contentType: string) {
  const stream: ClientHttp2Stream = session.request({
    ":method": "POST",
    ":path": "/fair.state.v1.StateService/Sync",
    "content-type": contentType,
    te: "trailers",
  });
  stream.on("error", () => {});
  let code: number | undefined;
  let message = "";
  const fromHeaders = (headers: Record<string, unknown>) => {
    if (headers["grpc-status"] === undefined) return;
    code = Number(headers["grpc-status"]);
    message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
  };
  stream.on("response", fromHeaders);
  stream.on("trailers", fromHeaders);
  const body: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => body.push(chunk));
  const ended = new Promise<Ended>((resolve) => {
    stream.once("close", () => {
      const bytes = Buffer.concat(body);
      for (let at = 0; at + 5 <= bytes.length; at += 5 + bytes.readUInt32BE(at + 1)) {
        const flags = bytes[at] ?? 0;
        const text = bytes.subarray(at + 5, at + 5 + bytes.readUInt32BE(at + 1)).toString();
        if (flags & 0x80) {
          code = Number(/^grpc-status:\s*(\d+)/im.exec(text)?.[1]);
          message = decodeURIComponent(/^grpc-message:\s*(.*?)\r?$/im.exec(text)?.[1] ?? "");
        } else if (flags & 0x02) {
          const { error } = JSON.parse(text) as { error?: { code: string; message: string } };
          if (error) {
            code = connectCodes[error.code];
            message = error.message;
          }
        }
      }
      resolve({ code, message, rstCode: stream.rstCode, aborted: stream.aborted });
    });
  });
  return { stream, ended };
}

/** A gRPC prefix claiming a message of `length` bytes. */
function prefix(length: number): Buffer {
  const bytes = Buffer.alloc(5);
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

/**
 * The bytes of unfinished messages the server holds
 * (`fair_state_buffered_request_bytes`), followed through its `set` calls,
 * with the most it ever held.
 */
function followBuffered(conditions: Conditions): { value: number; peak: number } {
  const gauge = server?.running.server.metrics.bufferedRequestBytes as Gauge;
  const followed = { value: 0, peak: 0 };
  const set = gauge.set.bind(gauge);
  gauge.set = ((value: number) => {
    set(value);
    followed.value = value;
    followed.peak = Math.max(followed.peak, value);
    conditions.notify();
  }) as Gauge["set"];
  return followed;
}

async function refusals(reason: string): Promise<number> {
  const metric = await server?.running.server.metrics.registry
    .getSingleMetric("fair_state_streams_refused_total")
    ?.get();
  return metric?.values.find((v) => v.labels["reason"] === reason)?.value ?? 0;
}

describe.each(paths)("%s", (_path, contentType) => {
  test("a stream that claims a big message and dribbles it is ended after messageTimeoutMs with RESOURCE_EXHAUSTED naming the key, and reset though its client is still writing", async () => {
    server = await startServer({ messageTimeoutMs: 30_000 });
    const conditions = new Conditions();
    const buffered = followBuffered(conditions);
    const { stream, ended } = rawStream(await rawConnection(), contentType);
    stream.write(prefix(1 * MiB));
    stream.write(Buffer.alloc(1_000));
    await conditions.until(() => buffered.value === 1_005);

    // Not before messageTimeoutMs; by 1.25 × it (the sweep runs every quarter).
    server.time.tick(30_000 - 1);
    expect(await refusals("message_timeout")).toBe(0);
    server.time.tick(7_500 + 1);
    expect(await refusals("message_timeout")).toBe(1);
    stream.write(Buffer.alloc(1_000)); // the client goes on dribbling

    const end = await ended;
    expect(end.code).toBe(Code.ResourceExhausted);
    expect(end.message).toContain("messageTimeoutMs");
    expect(end).toMatchObject({ rstCode: constants.NGHTTP2_NO_ERROR, aborted: true });
    expect(stream.destroyed).toBe(true);
    expect(buffered.value).toBe(0);
  });

  test("a message over maxMessageBytes ends its stream with RESOURCE_EXHAUSTED, and the stream is reset though its client keeps writing", async () => {
    server = await startServer({ maxMessageBytes: 64 * KiB });
    const conditions = new Conditions();
    const buffered = followBuffered(conditions);
    const { stream, ended } = rawStream(await rawConnection(), contentType);
    stream.write(prefix(1 * MiB));
    // More than the stream's flow-control window: without the reset this write would never complete.
    stream.write(Buffer.alloc(256 * KiB));

    const end = await ended;
    expect(end.code).toBe(Code.ResourceExhausted);
    // gRPC names the key; connect-node names its own readMaxBytes, which is maxMessageBytes.
    expect(end.message).toMatch(/maxMessageBytes|readMaxBytes/);
    expect(end).toMatchObject({ rstCode: constants.NGHTTP2_NO_ERROR, aborted: true });
    // Refused at its prefix: none of it was ever held.
    expect(buffered.peak).toBe(0);
  });
});

test("streams holding unfinished messages cannot take the server past maxBufferedRequestBytes: the ones that would are refused, naming the key; the total returns to 0", async () => {
  server = await startServer({ maxBufferedRequestBytes: 1 * MiB });
  const conditions = new Conditions();
  const buffered = followBuffered(conditions);
  // Nine streams, three of each protocol on a connection each, each holding
  // 300 KiB of a 512 KiB message: three fit in the budget.
  const sent = 300 * KiB;
  const held = 5 + sent;
  const streams: ReturnType<typeof rawStream>[] = [];
  for (const [, contentType] of paths) {
    const session = await rawConnection();
    for (let i = 0; i < 3; i++) streams.push(rawStream(session, contentType));
  }
  let closed = 0;
  const results: Ended[] = [];
  for (const { stream, ended } of streams) {
    void ended.then((end) => {
      closed++;
      results.push(end);
      conditions.notify();
    });
    stream.write(prefix(512 * KiB));
    stream.write(Buffer.alloc(sent));
  }
  // Everything has arrived: each stream is either held whole or refused and closed.
  await conditions.until(() => closed + buffered.value / held === streams.length);

  expect(buffered.peak).toBeLessThanOrEqual(1 * MiB);
  expect(closed).toBeGreaterThanOrEqual(6);
  expect(await refusals("max_buffered_request_bytes")).toBe(closed);
  for (const end of results) {
    expect(end.code).toBe(Code.ResourceExhausted);
    expect(end.message).toContain("maxBufferedRequestBytes");
    expect(end).toMatchObject({ rstCode: constants.NGHTTP2_NO_ERROR, aborted: true });
  }
  for (const session of sessions) session.destroy();
  await conditions.until(() => buffered.value === 0);
});

test("however a stream holding an unfinished message ends, what it held is released", async () => {
  server = await startServer();
  const conditions = new Conditions();
  const buffered = followBuffered(conditions);
  const state = grpcFrame(toBinary(SyncRequestSchema, stateRequest(seed0)));
  const kept = await rawConnection();
  const dropped = await rawConnection();
  const reset = rawStream(kept, "application/grpc+proto");
  const halfClosed = rawStream(kept, "application/grpc-web+proto");
  const completed = rawStream(kept, "application/grpc+proto");
  const onDropped = rawStream(dropped, "application/connect+proto");
  for (const { stream } of [reset, halfClosed, onDropped]) {
    stream.write(prefix(100 * KiB));
    stream.write(Buffer.alloc(10 * KiB));
  }
  completed.stream.write(state.subarray(0, 3)); // half a prefix
  const partial = 3 * (5 + 10 * KiB) + 3;
  await conditions.until(() => buffered.value === partial);

  completed.stream.write(state.subarray(3)); // the rest: a StateRequest, answered
  await conditions.until(() => buffered.value === partial - 3);
  reset.stream.close(constants.NGHTTP2_CANCEL);
  halfClosed.stream.end(); // inside the message: an error status
  dropped.destroy();
  await Promise.all([reset.ended, halfClosed.ended, onDropped.ended]);
  await conditions.until(() => buffered.value === 0);
  expect((await halfClosed.ended).code).toBeGreaterThan(0); // an error status, not OK
  expect(await refusals("message_timeout")).toBe(0);
});

test("honest clients sending large messages at full speed, on either path, are never refused", async () => {
  server = await startServer({ maxBufferedRequestBytes: 1 * MiB });
  const conditions = new Conditions();
  const buffered = followBuffered(conditions);
  const messages = 3;
  const deltasPerMessage = 15_000; // about 350 KiB encoded
  const writers = ([grpcProtobuf, grpcWebProtobuf] as MakeTransport[]).map((make, w) => {
    const writer = server?.open(make);
    if (writer === undefined) throw new Error("no server");
    // Subscribed first, so each writer sees its own broadcasts come back.
    writer.send(stateRequest(seed0));
    return { writer, row: w };
  });
  for (const { writer } of writers) {
    await writer.until(() => writer.fullStateReplies(seed0).length === 1, "the subscription");
  }
  for (const { writer, row } of writers) {
    for (let m = 0; m < messages; m++) {
      const deltas = Array.from(
        { length: deltasPerMessage },
        (_, i): DeltaTuple => [row, m * deltasPerMessage + i, 0.25, t0],
      );
      writer.send(deltaUpdate(seed0, deltas));
    }
  }
  for (const { writer, row } of writers) {
    const mine = () => writer.view(seed0).filter((b) => b.rowId === row).length;
    await writer.until(() => mine() === messages * deltasPerMessage, "every bucket broadcast");
    expect(writer.error).toBeUndefined();
  }
  expect(await refusals("max_buffered_request_bytes")).toBe(0);
  expect(await refusals("message_timeout")).toBe(0);
  // The messages did arrive in pieces, were counted while incomplete, and were let go.
  expect(buffered.peak).toBeGreaterThan(0);
  expect(buffered.peak).toBeLessThanOrEqual(1 * MiB);
  expect(buffered.value).toBe(0);
});
