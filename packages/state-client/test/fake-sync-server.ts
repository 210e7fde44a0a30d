// An in-memory Sync service (Connect's router transport) whose streams a test
// drives by hand, and the helpers the client's tests share: a client on fake
// time, waiting for it to connect, restarting the server under it.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createRouterTransport,
  type HandlerContext,
} from "@connectrpc/connect";
import {
  type Bucket,
  DECAY_RATE_HEADER,
  EPOCH_HEADER,
  NAMESPACE_HEADER,
  StateService,
  type SyncRequest,
  SyncResponseSchema,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import { FakeTime } from "@fair/testing";
import { type BucketValue, StateClient, type StateClientOptions } from "../src/index.js";

/** The server's window, as the fake announces it. */
export const windowMs = 300_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const seed0 = 1_764_136_800_000n;
/** One second into window `seed0`. */
export const t0 = Number(seed0) + 1_000;

/** One in-memory server stream: what it received, and a way to answer. */
export interface FakeStream {
  readonly received: SyncRequest[];
  readonly namespace: string | null;
  readonly authorization: string | null;
  send(response: MessageInitShape<typeof SyncResponseSchema>): void;
  fail(error: ConnectError): void;
  readonly ended: boolean;
}

/** An in-memory Sync service whose streams the test drives by hand. */
export class FakeServer {
  readonly streams: FakeStream[] = [];
  headers: Record<string, string> = {
    [WINDOW_MS_HEADER]: String(windowMs),
    [DECAY_RATE_HEADER]: "0.01",
  };
  /** When set, every new stream fails at once with this. */
  refuse: ConnectError | undefined;
  /** Answer every StateRequest with a one-part full-state reply of {@link FakeServer.reply}'s buckets. */
  answerStateRequests = true;
  /** The buckets of a StateRequest's reply, given what the stream received up to it. Default: none. */
  reply: (seed: bigint, stream: FakeStream) => Bucket[] = () => [];
  /** Called with every new stream before it sends anything (say, to send a broadcast first). */
  onStream: ((stream: FakeStream) => void) | undefined;
  readonly #waiters = new Set<() => void>();

  readonly transport = createRouterTransport(({ service }) => {
    service(StateService, { sync: (requests, context) => this.#sync(requests, context) });
  });

  async *#sync(requests: AsyncIterable<SyncRequest>, context: HandlerContext) {
    for (const [name, value] of Object.entries(this.headers))
      context.responseHeader.set(name, value);
    if (this.refuse) throw this.refuse;
    const queue: (MessageInitShape<typeof SyncResponseSchema> | ConnectError)[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const stream: FakeStream = {
      received: [],
      namespace: context.requestHeader.get(NAMESPACE_HEADER),
      authorization: context.requestHeader.get("authorization"),
      send: (r) => {
        queue.push(r);
        wake?.();
      },
      fail: (e) => {
        queue.push(e);
        wake?.();
      },
      get ended() {
        return done;
      },
    };
    this.streams.push(stream);
    this.onStream?.(stream);
    void (async () => {
      for await (const request of requests) {
        stream.received.push(request);
        if (request.request.case === "stateRequest" && this.answerStateRequests) {
          const { seed } = request.request.value;
          stream.send({
            seed,
            buckets: this.reply(seed, stream),
            fullState: true,
            fullStateLast: true,
          });
        }
        this.#notify();
      }
      done = true;
      wake?.();
      this.#notify();
    })();
    for (;;) {
      const next = queue.shift();
      if (next instanceof ConnectError) throw next;
      if (next) yield create(SyncResponseSchema, next);
      else if (done) return;
      else await new Promise<void>((r) => (wake = r));
    }
  }

  /** Resolves once `condition` holds (checked on every server event). */
  until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (condition()) {
          this.#waiters.delete(check);
          resolve();
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  #notify() {
    for (const waiter of [...this.#waiters]) waiter();
  }

  deltaUpdates(stream = 0) {
    return (this.streams[stream]?.received ?? []).flatMap((r) =>
      r.request.case === "deltaUpdate" ? [r.request.value] : [],
    );
  }

  /** What one stream received, one short line per message: `request 1764…`, `offer 1764… ×2`, `delta ×3`. */
  kinds(stream: number): string[] {
    return (this.streams[stream]?.received ?? []).map(({ request }) => {
      switch (request.case) {
        case "stateRequest":
          return `request ${request.value.seed}`;
        case "stateOffer":
          return `offer ${request.value.seed} ×${request.value.buckets.length}`;
        case "deltaUpdate":
          return `delta ×${request.value.deltas.length}`;
        default:
          return "empty";
      }
    });
  }
}

/** A wire bucket. */
export const wireBucket = (colId: number, prob: number, timeMs = t0): Bucket => ({
  $typeName: "fair.state.v1.Bucket",
  rowId: 0n,
  colId: BigInt(colId),
  prob,
  lastUpdateTimeMs: BigInt(timeMs),
});

/** Offered buckets of row 0, columns `from` … `from + count − 1`. */
export const offered = (count: number, from = 0): BucketValue[] =>
  Array.from({ length: count }, (_, i) => ({
    rowId: 0,
    colId: from + i,
    prob: 0.5,
    lastUpdateTimeMs: t0,
  }));

const started: StateClient[] = [];

/** Closes every client {@link start} made; call it in `afterEach`. */
export async function closeClients(): Promise<void> {
  await Promise.all(started.splice(0).map((c) => c.close()));
}

/** Lets in-memory stream work that is already queued run to completion. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

export function start(options: Partial<StateClientOptions> = {}) {
  const server = new FakeServer();
  const time = new FakeTime(t0);
  const client = new StateClient({
    transport: server.transport,
    now: time.now,
    timers: time.timers,
    random: () => 0.5,
    ...options,
  });
  started.push(client);
  return { server, time, client };
}

/** Connects `c` and resolves once its stream answered. */
export async function connected(c: StateClient, server: FakeServer) {
  c.connect();
  await server.until(() => server.streams.length > 0);
  await new Promise<void>((resolve) => {
    if (c.status === "connected") resolve();
    else c.on("connected", resolve);
  });
}

/** Resolves at the next `event` of `c`. */
export function next(c: StateClient, event: "connected" | "disconnected"): Promise<void> {
  return new Promise((resolve) => {
    const off = c.on(event, () => {
      off();
      resolve();
    });
  });
}

/**
 * The server restarts: the current stream fails, the server now sends `epoch` (none when
 * `undefined`), and the client reconnects after its backoff (0.5 × 100 ms at first).
 * Resolves once the new stream answered.
 */
export async function restart(
  server: FakeServer,
  time: FakeTime,
  c: StateClient,
  epoch: string | undefined,
): Promise<void> {
  const lost = next(c, "disconnected");
  server.streams.at(-1)?.fail(new ConnectError("restarting", Code.Unavailable));
  await lost;
  if (epoch === undefined) delete server.headers[EPOCH_HEADER];
  else server.headers[EPOCH_HEADER] = epoch;
  const back = next(c, "connected");
  time.tick(100);
  await back;
}
