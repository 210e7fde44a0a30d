// Reads a namespace's buckets from a running State Service over the same
// Sync stream every FAIR instance uses: a StateRequest answered with the
// seed's full state, and, for watching, the broadcasts that follow. It never
// sends a DeltaUpdate, so it changes nothing.
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  DECAY_RATE_HEADER,
  NAMESPACE_HEADER,
  StateService,
  type SyncRequest,
  SyncRequestSchema,
  type SyncResponse,
  WINDOW_MS_HEADER,
} from "@fair/state-proto";
import { bucketKey, type StoredBucket } from "@fair/tracker";

/** Where and how to reach the server. */
export interface ReaderOptions {
  /** `host:port` (plain HTTP/2) or a URL, `http://…` or `https://…`. */
  readonly target: string;
  /** The `fair-state-namespace` to read; `""` is the default namespace. */
  readonly namespace: string;
  /** A bearer token, when the server has `authTokensFile`. */
  readonly token?: string;
  /** PEM file of the CA that signed the server's certificate (with an `https://` target). */
  readonly caFile?: string;
}

/** What the server said about itself in a stream's headers. */
export interface ServerRules {
  readonly windowMs: number | undefined;
  readonly decayRatePerSecond: number | undefined;
}

/** A seed's buckets by `bucketKey`, and the server's rules. */
export interface SeedState {
  readonly buckets: Map<string, StoredBucket>;
  readonly rules: ServerRules;
}

/** Buckets that changed in one seed, as one broadcast carried them. */
export interface SeedChange {
  readonly seed: bigint;
  readonly buckets: readonly StoredBucket[];
}

function baseUrl(target: string): string {
  return /^https?:\/\//.test(target) ? target : `http://${target}`;
}

function stored(bucket: SyncResponse["buckets"][number]): StoredBucket {
  return {
    rowId: Number(bucket.rowId),
    colId: Number(bucket.colId),
    prob: bucket.prob,
    lastUpdateTimeMs: Number(bucket.lastUpdateTimeMs),
  };
}

function rulesOf(headers: Headers | undefined): ServerRules {
  const number = (name: string) => {
    const value = headers?.get(name);
    return value === null || value === undefined ? undefined : Number(value);
  };
  return { windowMs: number(WINDOW_MS_HEADER), decayRatePerSecond: number(DECAY_RATE_HEADER) };
}

/** A read-only client of one server's `Sync` streams. `close()` it when done. */
export class StateReader {
  readonly #sessions: Http2SessionManager;
  readonly #client;
  readonly #headers: Record<string, string>;

  constructor(options: ReaderOptions) {
    const url = baseUrl(options.target);
    const ca = options.caFile === undefined ? undefined : readFileSync(options.caFile);
    this.#sessions = new Http2SessionManager(url, {}, ca === undefined ? undefined : { ca });
    this.#client = createClient(
      StateService,
      createGrpcTransport({ baseUrl: url, sessionManager: this.#sessions }),
    );
    this.#headers = { [NAMESPACE_HEADER]: options.namespace };
    if (options.token !== undefined) this.#headers["authorization"] = `Bearer ${options.token}`;
  }

  /** Every bucket the server holds for `seed`, read with one full-state request. */
  async readSeed(seed: bigint): Promise<SeedState> {
    const done = new AbortController();
    let headers: Headers | undefined;
    const buckets = new Map<string, StoredBucket>();
    const responses = this.#client.sync(this.#ask([seed], done.signal), {
      headers: this.#headers,
      onHeader: (received) => {
        headers = received;
      },
    });
    for await (const response of responses) {
      if (!response.fullState || response.seed !== seed) continue;
      for (const bucket of response.buckets) {
        const value = stored(bucket);
        buckets.set(bucketKey(value.rowId, value.colId), value);
      }
      if (response.fullStateLast) break;
    }
    done.abort();
    return { buckets, rules: rulesOf(headers) };
  }

  /**
   * The changes the server broadcasts for `seeds`, as they come, until
   * `signal` aborts (then it returns). The full-state replies that open the
   * stream come first, as changes too, so a watcher starts from the whole
   * state.
   */
  async *watch(seeds: readonly bigint[], signal: AbortSignal): AsyncGenerator<SeedChange> {
    const wanted = new Set(seeds);
    const responses = this.#client.sync(this.#ask(seeds, signal), {
      headers: this.#headers,
      signal,
    });
    try {
      for await (const response of responses) {
        if (!wanted.has(response.seed) || response.buckets.length === 0) continue;
        yield { seed: response.seed, buckets: response.buckets.map(stored) };
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  close(): void {
    this.#sessions.abort();
  }

  /** The request side: one StateRequest per seed, then nothing until `signal` aborts. */
  async *#ask(seeds: readonly bigint[], signal: AbortSignal): AsyncGenerator<SyncRequest> {
    for (const seed of seeds) {
      yield create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } });
    }
    if (signal.aborted) return;
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
}
