import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { GrpcFrameReader } from "@fair/state-proto";
import { type BucketView, key } from "./bucket-view.js";
import { walkSyncResponse } from "./sync-response-walker.js";
import { PROBE_ROW } from "./workload.js";

/** Called for every probe bucket (row {@link PROBE_ROW}) a stream receives in a broadcast. */
export type ProbeVisitor = (stream: BenchStream, colId: number) => void;

/**
 * One `Sync` stream as the bench drives it: pre-framed requests out, a
 * cheap walk over every response in. It keeps the latest value of each
 * bucket it was sent (its view of the shared state), so the run can end
 * with a convergence check against a full-state reply.
 */
export class BenchStream {
  /** prob and timestamp per bucket key (`row · 2^24 + col`), from broadcasts. */
  readonly view: BucketView;
  bucketsReceived = 0;
  messagesReceived = 0;
  /** The gRPC status the stream ended with, once it has. */
  status: string | undefined;
  lastBroadcastAt = 0;
  readonly #stream: ClientHttp2Stream;
  readonly #reader = new GrpcFrameReader();
  #fullState:
    | { buckets: Map<number, { prob: number; timeMs: number }>; done: () => void }
    | undefined;
  readonly #ended: Promise<void>;

  /** `view` holds what arrives; size it to the load's rows and columns. */
  constructor(
    session: ClientHttp2Session,
    namespace: string,
    view: BucketView,
    private readonly onProbe: ProbeVisitor | undefined,
  ) {
    this.view = view;
    this.#stream = session.request({
      ":method": "POST",
      ":path": "/fair.state.v1.StateService/Sync",
      "content-type": "application/grpc+proto",
      te: "trailers",
      "fair-state-namespace": namespace,
    });
    this.#stream.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#ended = new Promise((resolve) => {
      this.#stream.on("trailers", (trailers) => {
        this.status = String(trailers["grpc-status"] ?? "?");
      });
      this.#stream.on("close", () => {
        this.status ??= this.#stream.rstCode ? `reset ${this.#stream.rstCode}` : "closed";
        resolve();
      });
      this.#stream.on("error", () => {});
    });
  }

  /** Writes a pre-framed request; false means the stream's buffer is full (wait for {@link BenchStream.drained}). */
  write(framed: Buffer): boolean {
    return this.#stream.write(framed);
  }

  drained(): Promise<void> {
    return new Promise((resolve) => this.#stream.once("drain", resolve));
  }

  /** Sends a framed StateRequest and resolves with the reply's buckets; rejects if the stream ends first. */
  fullState(framedRequest: Buffer): Promise<Map<number, { prob: number; timeMs: number }>> {
    return new Promise((resolve, reject) => {
      const buckets = new Map<number, { prob: number; timeMs: number }>();
      let settled = false;
      this.#fullState = {
        buckets,
        done: () => {
          settled = true;
          this.#fullState = undefined;
          resolve(buckets);
        },
      };
      void this.#ended.then(() => {
        if (settled) return;
        this.#fullState = undefined;
        reject(new Error(`the stream ended (${this.status}) before its full-state reply`));
      });
      this.write(framedRequest);
    });
  }

  /** Half-closes and waits for the server to end the stream. */
  async end(): Promise<void> {
    this.#stream.end();
    await this.#ended;
  }

  close(): void {
    this.#stream.close();
  }

  #onData(chunk: Buffer): void {
    // Once per chunk, not per bucket: a clock read per bucket was a visible
    // share of the generator's time at millions of buckets per second.
    this.lastBroadcastAt = performance.now();
    for (const message of this.#reader.push(chunk)) {
      this.messagesReceived++;
      // The flags follow the buckets on the wire, so while a full-state reply
      // is awaited the buckets are held until the message says what it was.
      const awaiting = this.#fullState;
      const held: [number, number, number, number][] | undefined = awaiting ? [] : undefined;
      const walked = walkSyncResponse(message, (rowId, colId, prob, timeMs) => {
        if (held) held.push([rowId, colId, prob, timeMs]);
        else this.#broadcast(rowId, colId, prob, timeMs);
      });
      if (awaiting && held && walked.fullState) {
        for (const [rowId, colId, prob, timeMs] of held)
          awaiting.buckets.set(key(rowId, colId), { prob, timeMs });
        if (walked.fullStateLast) awaiting.done();
      } else if (held) {
        for (const [rowId, colId, prob, timeMs] of held)
          this.#broadcast(rowId, colId, prob, timeMs);
      }
    }
  }

  #broadcast(rowId: number, colId: number, prob: number, timeMs: number): void {
    this.bucketsReceived++;
    this.view.set(rowId, colId, prob, timeMs);
    if (rowId === PROBE_ROW) this.onProbe?.(this, colId);
  }
}
