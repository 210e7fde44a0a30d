// Raw HTTP/2 clients for the abuse tests: each controls every byte it sends
// and whether it reads, as a hostile client would, and one well-behaved
// prober measures what a healthy client of the same server sees meanwhile.
import { once } from "node:events";
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  GrpcFrameReader,
  NAMESPACE_HEADER,
  type SyncRequest,
  SyncRequestSchema,
  type SyncResponse,
  SyncResponseSchema,
} from "@fair/state-proto";

const WINDOW_MS = 300_000;

/** The current window's seed, as the server (on the real clock) sees it. */
export function currentSeed(): bigint {
  return BigInt(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS);
}

/** A gRPC frame: flag byte, big-endian length, message. */
export function frame(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** One encoded `SyncRequest` frame. */
export function requestFrame(request: SyncRequest): Buffer {
  return frame(toBinary(SyncRequestSchema, request));
}

/** A `DeltaUpdate` frame of `count` buckets from column `firstCol` of row `row`, each +`prob`. */
export function fillFrame(
  seed: bigint,
  row: number,
  firstCol: number,
  count: number,
  prob = 0.5,
): Buffer {
  const ts = BigInt(Date.now());
  return requestFrame(
    create(SyncRequestSchema, {
      request: {
        case: "deltaUpdate",
        value: {
          seed,
          deltas: Array.from({ length: count }, (_, i) => ({
            rowId: BigInt(row),
            colId: BigInt(firstCol + i),
            deltaProb: prob,
            lastUpdateTimeMs: ts,
          })),
        },
      },
    }),
  );
}

/** A `StateRequest` frame. */
export function stateRequestFrame(seed: bigint): Buffer {
  return requestFrame(
    create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } }),
  );
}

/** Connections a test opened, closed by {@link closeAll}. */
const opened = new Set<ClientHttp2Session>();

/** A raw HTTP/2 connection to `address`; its errors are the test's to observe, never unhandled. */
export async function rawSession(
  address: string,
  settings: { initialWindowSize?: number } = {},
): Promise<ClientHttp2Session> {
  // Writers here send tens of MiB per connection: more than Node's default
  // 10 MB of session memory, past which it would drop the server's answers.
  const session = connect(`http://${address}`, { settings, maxSessionMemory: 256 });
  session.on("error", () => {});
  opened.add(session);
  session.once("close", () => opened.delete(session));
  await once(session, "remoteSettings");
  return session;
}

/** Destroys every connection the test opened. */
export function closeAll(): void {
  for (const session of opened) session.destroy();
  opened.clear();
}

/** A Sync stream on `session`, with its status once it ends. */
export interface RawStream {
  readonly stream: ClientHttp2Stream;
  /** The `grpc-status` the stream ended with, or `"reset"`; undefined while open. */
  readonly status: () => string | undefined;
  /** The `grpc-message` it ended with, decoded; `""` when none. */
  readonly message: () => string;
  readonly closed: Promise<void>;
}

export function rawSync(session: ClientHttp2Session, namespace = ""): RawStream {
  const stream = session.request({
    ":method": "POST",
    ":path": "/fair.state.v1.StateService/Sync",
    "content-type": "application/grpc+proto",
    te: "trailers",
    [NAMESPACE_HEADER]: namespace,
  });
  stream.on("error", () => {});
  // Read (and drop) what comes, unless a test pauses it: a Node stream whose
  // readable side is never consumed does not see the server's reset.
  stream.resume();
  let status: string | undefined;
  let message = "";
  const take = (fields: Record<string, unknown>) => {
    if (fields["grpc-status"] === undefined) return;
    status = String(fields["grpc-status"]);
    message = decodeURIComponent(String(fields["grpc-message"] ?? ""));
  };
  stream.on("response", take);
  stream.on("trailers", take);
  const closed = new Promise<void>((resolve) =>
    stream.once("close", () => {
      status ??= "reset";
      resolve();
    }),
  );
  return { stream, status: () => status, message: () => message, closed };
}

/** Reads a stream's responses as they come; `until` resolves when `condition` holds. */
export class ResponseReader {
  readonly responses: SyncResponse[] = [];
  #wake: (() => void) | undefined;

  constructor(stream: ClientHttp2Stream) {
    const reader = new GrpcFrameReader();
    stream.on("data", (chunk: Buffer) => {
      for (const message of reader.push(chunk)) {
        this.responses.push(fromBinary(SyncResponseSchema, message));
      }
      this.#wake?.();
    });
    stream.once("close", () => this.#wake?.());
  }

  async until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Buckets in the full-state replies received so far, and whether the last part came. */
  fullState(): { buckets: number; done: boolean } {
    let buckets = 0;
    let done = false;
    for (const response of this.responses) {
      if (!response.fullState) continue;
      buckets += response.buckets.length;
      if (response.fullStateLast) done = true;
    }
    return { buckets, done };
  }
}

/**
 * Writes `buckets` buckets into `seed` of `namespace` in messages of 10,000
 * deltas, and resolves once the server has applied them all (its reply to a
 * StateRequest sent after them has come).
 */
export async function fillSeed(address: string, namespace: string, seed: bigint, buckets: number) {
  const session = await rawSession(address);
  const { stream } = rawSync(session, namespace);
  const reader = new ResponseReader(stream);
  const perMessage = 10_000;
  for (let first = 0; first < buckets; first += perMessage) {
    const count = Math.min(perMessage, buckets - first);
    const row = Math.floor(first / 2 ** 20);
    if (!stream.write(fillFrame(seed, row, first % 2 ** 20, count))) await once(stream, "drain");
  }
  // A seed of its own, so the reply is one small part and comes after every update.
  stream.write(stateRequestFrame(seed + 300_000n));
  await reader.until(
    () => reader.responses.some((r) => r.fullState && r.seed === seed + 300_000n),
    "the fill to be applied",
    60_000,
  );
  session.destroy();
}

/**
 * A well-behaved client in a namespace of its own: every `intervalMs` it
 * raises one bucket and times how long the server takes to broadcast it back.
 */
export class Prober {
  readonly latenciesMs: number[] = [];
  readonly #stream: ClientHttp2Stream;
  readonly #reader: ResponseReader;
  readonly #seed = currentSeed();
  #running = true;
  #done: Promise<void>;

  private constructor(stream: ClientHttp2Stream) {
    this.#stream = stream;
    this.#reader = new ResponseReader(stream);
    this.#done = Promise.resolve();
  }

  /**
   * Resolves once the first probe came back: the prober's stream is
   * admitted by then, so an attack that starts next cannot mistake its
   * connection for a streamless one (and evict it at maxConnections).
   */
  static async start(address: string, intervalMs = 50): Promise<Prober> {
    const session = await rawSession(address);
    const prober = new Prober(rawSync(session, "healthy-prober").stream);
    prober.#done = prober.#run(intervalMs);
    await prober.probed(1);
    return prober;
  }

  async #run(intervalMs: number): Promise<void> {
    for (let col = 0; this.#running; col++) {
      const sent = performance.now();
      const seen = this.#reader.responses.length;
      this.#stream.write(fillFrame(this.#seed, 0, col, 1, 0.01));
      try {
        await this.#reader.until(
          () =>
            this.#reader.responses
              .slice(seen)
              .some((r) => r.buckets.some((b) => Number(b.colId) === col)),
          `probe ${col}`,
          30_000,
        );
      } catch {
        this.latenciesMs.push(Number.POSITIVE_INFINITY);
        return;
      }
      this.latenciesMs.push(performance.now() - sent);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Resolves once `count` probes have come back. */
  probed(count: number): Promise<void> {
    return waitFor(() => this.latenciesMs.length >= count, `${count} probes`, 60_000);
  }

  /** Stops probing; resolves with the latencies measured. */
  async stop(): Promise<number[]> {
    this.#running = false;
    await this.#done;
    this.#stream.close();
    return this.latenciesMs;
  }
}

/** Resolves once `condition` holds (checked every 50 ms); rejects after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The `q` quantile of `values` (0 ≤ q ≤ 1). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
