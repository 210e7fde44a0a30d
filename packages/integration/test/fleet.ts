// A State Service on 127.0.0.1 and FAIR-instance clients around it, all on
// one fake clock: the server's intervals and the clients' timers move only
// when the test says so. Sockets are real.
import { type BucketValue, StateClient, type StateClientOptions } from "@fair/state-client";
import {
  loadConfig,
  type RunningStateServer,
  type StateServerConfig,
  serveStateServer,
} from "@fair/state-server";
import { Conditions, FakeTime } from "@fair/testing";

export const windowMs = 300_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const seed0 = 1_764_136_800_000n;
export const seed1 = seed0 + BigInt(windowMs);
export const t0 = Number(seed0) + 1_000;

/** A client and the view it holds: buckets overwritten by whatever the server sends. */
export interface Instance {
  readonly client: StateClient;
  readonly view: Map<bigint, Map<string, BucketValue>>;
  /** The view of one seed, in (row, col) order. */
  buckets(seed: bigint): BucketValue[];
}

export class Fleet {
  readonly time = new FakeTime(t0);
  readonly instances: Instance[] = [];
  server: RunningStateServer | undefined;
  readonly #conditions = new Conditions();

  async startServer(
    address = "127.0.0.1:0",
    overrides: Partial<StateServerConfig> = {},
  ): Promise<RunningStateServer> {
    const config: StateServerConfig = {
      ...loadConfig({ argv: [], env: {} }).config,
      grpcListenAddress: address,
      metricsListenAddress: "127.0.0.1:0",
      ...overrides,
    };
    this.server = await serveStateServer({ config, now: this.time.now, timers: this.time.timers });
    return this.server;
  }

  async stopServer(): Promise<void> {
    await this.server?.shutdown(1_000);
    this.server = undefined;
  }

  /** A client of the running server (or of `baseUrl`), connected at once. */
  join(options: Partial<StateClientOptions> = {}): Instance {
    const view = new Map<bigint, Map<string, BucketValue>>();
    const client = new StateClient({
      baseUrl: `http://${this.server?.grpcAddress ?? "127.0.0.1:1"}`,
      now: this.time.now,
      timers: this.time.timers,
      random: () => 0.5,
      onStateUpdate: (seed, buckets) => {
        let seedView = view.get(seed);
        if (seedView === undefined) {
          seedView = new Map();
          view.set(seed, seedView);
        }
        for (const bucket of buckets) seedView.set(`${bucket.rowId}:${bucket.colId}`, bucket);
        this.#notify();
      },
      ...options,
    });
    client.subscribe({ onStatusChange: () => this.#notify() });
    client.connect();
    const instance: Instance = {
      client,
      view,
      buckets: (seed) => sortBuckets([...(view.get(seed)?.values() ?? [])]),
    };
    this.instances.push(instance);
    return instance;
  }

  /** The server's full state of `seed`, in (row, col) order. */
  serverState(seed: bigint): BucketValue[] {
    const held = this.server?.server.store.getSeed(seed) ?? [];
    // The fleet runs the in-memory store, which answers synchronously.
    if (held instanceof Promise) throw new Error("serverState needs the in-memory store");
    return sortBuckets(held);
  }

  /** Resolves when `condition` holds, checked on every update and status change. */
  until(condition: () => boolean): Promise<void> {
    return this.#conditions.until(condition);
  }

  /** Moves fake time on by `ms` (flushes, backoffs), one flush interval at a time. */
  tick(ms: number, stepMs = 10): void {
    for (let done = 0; done < ms; done += stepMs) this.time.tick(Math.min(stepMs, ms - done));
    this.#notify();
  }

  async close(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.client.close()));
    await this.stopServer();
  }

  #notify(): void {
    this.#conditions.notify();
  }
}

export function sortBuckets(buckets: BucketValue[]): BucketValue[] {
  return buckets.sort((a, b) => a.rowId - b.rowId || a.colId - b.colId);
}
