// A small reconnecting Sync client for the replica tests: it holds a list of
// server addresses and, whenever its stream ends, moves on to the next one,
// asks for full state again and keeps the view it is sent (overwriting
// blindly, as FAIR instances do). Deltas it sends while disconnected wait for
// the next stream; a delta sent into a stream that then died is not resent.
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { StateService, type SyncRequest, SyncRequestSchema } from "@fair/state-proto";
import { Conditions } from "@fair/testing";

/** `[rowId, colId, deltaProb, lastUpdateTimeMs]` */
export type DeltaTuple = readonly [number, number, number, number];

export class ReplicaClient {
  /** The latest value of each bucket, by "row:col". */
  readonly view = new Map<string, { prob: number; lastUpdateTimeMs: number }>();
  /** The address of every stream opened, in order. */
  readonly streams: string[] = [];
  readonly #addresses: readonly string[];
  readonly #seed: bigint;
  readonly #outbox: SyncRequest[] = [];
  readonly #conditions = new Conditions();
  readonly #sleepers = new Set<() => void>();
  // Each stream's request generator stops once its stream is over, so a dead
  // stream's generator never takes a delta meant for the next one.
  #generation = 0;
  #next = 0;
  #closed = false;
  #session: Http2SessionManager | undefined;
  #done: Promise<void>;
  /** Full-state replies received on the current stream. */
  fullStates = 0;

  constructor(addresses: readonly string[], seed: bigint, maxStreams = 20) {
    this.#addresses = addresses;
    this.#seed = seed;
    this.#done = this.#run(maxStreams);
  }

  /** Sends one DeltaUpdate (now, or on the next stream when disconnected). */
  send(deltas: readonly DeltaTuple[]): void {
    this.#outbox.push(
      create(SyncRequestSchema, {
        request: {
          case: "deltaUpdate",
          value: {
            seed: this.#seed,
            deltas: deltas.map(([row, col, deltaProb, ts]) => ({
              rowId: BigInt(row),
              colId: BigInt(col),
              deltaProb,
              lastUpdateTimeMs: BigInt(ts),
            })),
          },
        },
      }),
    );
    this.#wakeSenders();
  }

  /**
   * Asks for the seed's full state again. The server answers after applying
   * every update sent before it on the stream.
   */
  requestState(): void {
    this.#outbox.push(
      create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed: this.#seed } } }),
    );
    this.#wakeSenders();
  }

  /** Resolves once `condition` holds, checked on every message and reconnect. */
  until(condition: () => boolean): Promise<void> {
    return this.#conditions.until(condition);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeSenders();
    this.#session?.abort();
    await this.#done;
  }

  async #run(maxStreams: number): Promise<void> {
    for (let attempt = 0; attempt < maxStreams && !this.#closed; attempt++) {
      const address = this.#addresses[this.#next++ % this.#addresses.length] as string;
      this.streams.push(address);
      this.fullStates = 0;
      const session = new Http2SessionManager(`http://${address}`);
      this.#session = session;
      const client = createClient(
        StateService,
        createGrpcTransport({ baseUrl: `http://${address}`, sessionManager: session }),
      );
      const generation = ++this.#generation;
      try {
        for await (const response of client.sync(this.#requests(generation))) {
          if (response.seed !== this.#seed) continue;
          if (response.fullState) this.fullStates++;
          for (const b of response.buckets) {
            this.view.set(`${b.rowId}:${b.colId}`, {
              prob: b.prob,
              lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
            });
          }
          this.#notify();
        }
      } catch {
        // The stream ended (server gone, UNAVAILABLE, refused): try the next address.
      } finally {
        this.#generation++;
        this.#wakeSenders();
        session.abort();
      }
      this.#notify();
    }
  }

  async *#requests(generation: number): AsyncGenerator<SyncRequest> {
    yield create(SyncRequestSchema, {
      request: { case: "stateRequest", value: { seed: this.#seed } },
    });
    for (;;) {
      if (this.#closed || generation !== this.#generation) return;
      const next = this.#outbox.shift();
      if (next) {
        yield next;
      } else {
        await new Promise<void>((resolve) => {
          this.#sleepers.add(resolve);
        });
      }
    }
  }

  #wakeSenders(): void {
    for (const wake of [...this.#sleepers]) wake();
    this.#sleepers.clear();
  }

  #notify(): void {
    this.#conditions.notify();
  }
}
