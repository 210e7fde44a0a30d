// A real server on 127.0.0.1 (port 0) with fake time, and a Sync client
// that records what it receives, for the integration tests.
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type CallOptions,
  Code,
  ConnectError,
  createClient,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import {
  GRPC_PREFIX_BYTES,
  NAMESPACE_HEADER,
  StateService,
  type SyncRequest,
  SyncRequestSchema,
  type SyncResponse,
  SyncResponseSchema,
} from "@fair/state-proto";
import type { Store } from "@fair/state-store";
import { FakeTime } from "@fair/testing";
import {
  loadConfig,
  type RunningStateServer,
  type ServerLogger,
  type StateServerConfig,
  serveStateServer,
} from "../src/index.js";

export const windowMs = 300_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const seed0 = 1_764_136_800_000n;
/** One second into `seed0`'s window: the fake clock's start. */
export const t0 = Number(seed0) + 1_000;

/** `[rowId, colId, deltaProb, lastUpdateTimeMs]` */
export type DeltaTuple = readonly [number, number, number, number];

export function deltaUpdate(seed: bigint, deltas: readonly DeltaTuple[]): SyncRequest {
  return create(SyncRequestSchema, {
    request: {
      case: "deltaUpdate",
      value: {
        seed,
        deltas: deltas.map(([row, col, deltaProb, ts]) => ({
          rowId: BigInt(row),
          colId: BigInt(col),
          deltaProb,
          lastUpdateTimeMs: BigInt(ts),
        })),
      },
    },
  });
}

/** `[rowId, colId, prob, lastUpdateTimeMs]`: one bucket of a state offer, an absolute value. */
export type BucketTuple = readonly [number, number, number, number];

/** A `SyncRequest` carrying a `StateOffer` (learning mode) of `buckets` in `seed`. */
export function stateOffer(seed: bigint, buckets: readonly BucketTuple[]): SyncRequest {
  return create(SyncRequestSchema, {
    request: {
      case: "stateOffer",
      value: {
        seed,
        buckets: buckets.map(([row, col, prob, ts]) => ({
          rowId: BigInt(row),
          colId: BigInt(col),
          prob,
          lastUpdateTimeMs: BigInt(ts),
        })),
      },
    },
  });
}

export function stateRequest(seed: bigint): SyncRequest {
  return create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } });
}

/** A bucket as the tests compare them: plain numbers. */
export interface PlainBucket {
  rowId: number;
  colId: number;
  prob: number;
  lastUpdateTimeMs: number;
}

export function plain(response: SyncResponse): PlainBucket[] {
  return response.buckets.map((b) => ({
    rowId: Number(b.rowId),
    colId: Number(b.colId),
    prob: b.prob,
    lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
  }));
}

/**
 * Puts `count` buckets into `seed` of the store's default namespace,
 * straight into the store (no stream, no broadcast of its own); returns
 * the value each must have, by `row:col`.
 */
export async function fillSeed(
  store: Store,
  count: number,
  seed = seed0,
): Promise<Map<string, number>> {
  const expected = new Map<string, number>();
  for (let start = 0; start < count; start += 10_000) {
    const deltas = [];
    for (let i = start; i < Math.min(count, start + 10_000); i++) {
      const [rowId, colId] = [i % 4, Math.floor(i / 4)];
      const deltaProb = ((i % 9_973) + 1) / 10_000;
      deltas.push({ rowId, colId, deltaProb, lastUpdateTimeMs: t0 });
      expected.set(`${rowId}:${colId}`, deltaProb);
    }
    await store.applyUpdate({ seed, deltas });
  }
  return expected;
}

/** Each bucket's value in `view`, by `row:col`. */
export function byKey(view: readonly PlainBucket[]): Map<string, number> {
  return new Map(view.map((b) => [`${b.rowId}:${b.colId}`, b.prob]));
}

/** A Connect transport of one protocol to `baseUrl`, on `sessionManager`'s connection. */
export type MakeTransport = (baseUrl: string, sessionManager: Http2SessionManager) => Transport;

/** gRPC with protobuf: served on the HTTP/2 stream by the server's own code (grpc-sync-handler.ts). */
export const grpcProtobuf: MakeTransport = (baseUrl, sessionManager) =>
  createGrpcTransport({ baseUrl, sessionManager });

/** gRPC-Web with protobuf: served through Connect. */
export const grpcWebProtobuf: MakeTransport = (baseUrl, sessionManager) =>
  createGrpcWebTransport({ baseUrl, httpVersion: "2", sessionManager });

/** The Connect protocol with JSON: served through Connect, with message objects. */
export const connectJson: MakeTransport = (baseUrl, sessionManager) =>
  createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, sessionManager });

export interface TestServer {
  readonly running: RunningStateServer;
  readonly time: FakeTime;
  readonly config: StateServerConfig;
  /** A gRPC transport to the server, for other services (health). */
  readonly transport: Transport;
  /** Opens a Sync stream over gRPC; closed by {@link TestServer.close}. */
  connect(namespace?: string): SyncClient;
  /**
   * Opens a Sync stream over `make`'s protocol, on a connection of its own,
   * with `headers`; closed by {@link TestServer.close}.
   */
  open(make: MakeTransport, headers?: Record<string, string>): SyncClient;
  /** Ends every client and shuts the server down. */
  close(): Promise<void>;
}

/**
 * Makes the store a test server runs on, from its configuration and clock;
 * by default the server makes its own from `config.store`.
 */
export type MakeStore = (config: StateServerConfig, time: FakeTime) => Store;

/** How a test server starts, beyond its configuration and store. */
export interface StartOptions {
  /** Where the fake clock starts, in Unix ms. Default {@link t0}. */
  readonly startMs?: number;
  /** Where the server logs. Default: nowhere. */
  readonly logger?: ServerLogger;
}

export async function startServer(
  overrides: Partial<StateServerConfig> = {},
  makeStore?: MakeStore,
  options: StartOptions = {},
): Promise<TestServer> {
  const time = new FakeTime(options.startMs ?? t0);
  const config: StateServerConfig = {
    ...loadConfig({ argv: [], env: {} }).config,
    grpcListenAddress: "127.0.0.1:0",
    metricsListenAddress: "127.0.0.1:0",
    shutdownGracePeriodMs: 2_000,
    ...overrides,
  };
  const running = await serveStateServer({
    config,
    now: time.now,
    timers: time.timers,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(makeStore === undefined ? {} : { store: makeStore(config, time) }),
  });
  const sessions = new Http2SessionManager(`http://${running.grpcAddress}`);
  const transport = createGrpcTransport({
    baseUrl: `http://${running.grpcAddress}`,
    sessionManager: sessions,
  });
  const client = createClient(StateService, transport);
  const clients: SyncClient[] = [];
  const ownSessions: Http2SessionManager[] = [];
  return {
    running,
    time,
    config,
    transport,
    connect(namespace) {
      const headers = namespace === undefined ? {} : { [NAMESPACE_HEADER]: namespace };
      const sync = new SyncClient((requests, options) => client.sync(requests, options), headers);
      clients.push(sync);
      return sync;
    },
    open(make, headers = {}) {
      const baseUrl = `http://${running.grpcAddress}`;
      const sessionManager = new Http2SessionManager(baseUrl);
      ownSessions.push(sessionManager);
      const own = createClient(StateService, make(baseUrl, sessionManager));
      const sync = new SyncClient((requests, options) => own.sync(requests, options), headers);
      clients.push(sync);
      return sync;
    },
    async close() {
      for (const sync of clients) sync.end();
      await running.shutdown(500);
      sessions.abort();
      for (const own of ownSessions) own.abort();
    },
  };
}

type SyncCall = (
  requests: AsyncIterable<MessageInitShape<typeof SyncRequestSchema>>,
  options: CallOptions,
) => AsyncIterable<SyncResponse>;

/**
 * One Sync stream: `send()` writes, `responses` collects, `until()` waits
 * for a condition on what has arrived (an event, never a sleep).
 */
export class SyncClient {
  readonly responses: SyncResponse[] = [];
  headers: Headers | undefined;
  /** The status the stream ended with; `undefined` while open, OK as `Code` 0 never appears. */
  error: ConnectError | undefined;
  ended = false;
  readonly #outbox: SyncRequest[] = [];
  #outboxWake: (() => void) | undefined;
  #requestsDone = false;
  readonly #waiters = new Set<() => void>();
  readonly #abort = new AbortController();

  constructor(call: SyncCall, headers: Record<string, string>) {
    const requests = this.#requests();
    const responses = call(requests, {
      headers,
      signal: this.#abort.signal,
      onHeader: (h) => {
        this.headers = h;
      },
    });
    void this.#receive(responses);
  }

  send(...messages: SyncRequest[]): void {
    this.#outbox.push(...messages);
    this.#outboxWake?.();
  }

  /** Half-closes: no more requests. */
  end(): void {
    this.#requestsDone = true;
    this.#outboxWake?.();
  }

  /** Resolves once `condition` holds; rejects if the stream ends first without it. */
  until(condition: () => boolean, what = "condition"): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition()) {
          this.#waiters.delete(check);
          resolve();
        } else if (this.ended) {
          this.#waiters.delete(check);
          reject(new Error(`stream ended (${this.error?.message ?? "OK"}) before ${what}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Waits for the stream to end; resolves with its error status, or undefined for OK. */
  async closed(): Promise<ConnectError | undefined> {
    await this.until(() => this.ended, "end").catch(() => undefined);
    return this.error;
  }

  /** The latest value of each bucket seen for `seed`, in (row, col) order. */
  view(seed: bigint): PlainBucket[] {
    const latest = new Map<string, PlainBucket>();
    for (const response of this.responses) {
      if (response.seed !== seed) continue;
      for (const bucket of plain(response)) latest.set(`${bucket.rowId}:${bucket.colId}`, bucket);
    }
    return [...latest.values()].sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
  }

  fullStateReplies(seed: bigint): SyncResponse[] {
    return this.responses.filter((r) => r.fullState && r.seed === seed);
  }

  async *#requests(): AsyncGenerator<SyncRequest> {
    for (;;) {
      const next = this.#outbox.shift();
      if (next) {
        yield next;
      } else if (this.#requestsDone) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          this.#outboxWake = resolve;
        });
      }
    }
  }

  async #receive(responses: AsyncIterable<SyncResponse>): Promise<void> {
    try {
      for await (const response of responses) {
        this.responses.push(response);
        this.#notify();
      }
    } catch (error) {
      this.error = ConnectError.from(error);
      if (this.error.code === Code.Canceled) this.error = undefined;
    } finally {
      this.ended = true;
      this.#notify();
    }
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/**
 * A Sync stream opened by hand on a raw HTTP/2 session, so a test controls
 * every byte (and whether anything is read). Its errors are the test's to
 * observe, never unhandled.
 */
export function rawSyncStream(
  session: ClientHttp2Session,
  contentType = "application/grpc+proto",
): ClientHttp2Stream {
  const stream = session.request({
    ":method": "POST",
    ":path": "/fair.state.v1.StateService/Sync",
    "content-type": contentType,
    te: "trailers",
  });
  stream.on("error", () => {});
  return stream;
}

/**
 * Starts reading `stream` (a raw gRPC `Sync` stream) and decodes each
 * response message into `into` as it arrives.
 */
export function readResponses(stream: ClientHttp2Stream, into: SyncResponse[]): void {
  let buffered = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= GRPC_PREFIX_BYTES) {
      const end = GRPC_PREFIX_BYTES + buffered.readUInt32BE(1);
      if (buffered.length < end) break;
      into.push(fromBinary(SyncResponseSchema, buffered.subarray(GRPC_PREFIX_BYTES, end)));
      buffered = buffered.subarray(end);
    }
  });
  stream.resume();
}

/** A gRPC length-prefixed frame: uncompressed flag, big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}
