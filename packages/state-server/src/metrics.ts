import type { HubStats } from "@fair/state-broadcast";
import {
  isLearning,
  type MaybePromise,
  type OfferStatus,
  type StoreEpoch,
  type StoreStats,
} from "@fair/state-store";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { type NamespaceLabelling, NamespaceMetrics } from "./namespace-metrics.js";
import { serverVersion } from "./version.js";

/** Where scrape-time figures come from: the store's and the hub's own counters. */
export interface MetricSources {
  /** The store's sizes and counters; a remote store answers asynchronously. */
  readonly storeStats: () => MaybePromise<StoreStats>;
  readonly hubStats: () => HubStats;
  readonly serving: () => boolean;
  /** The store's current epoch; `undefined` without the capability or before the store knows it. Default: none. */
  readonly epoch?: () => StoreEpoch | undefined;
  /** How long after its epoch began the store takes offers, in ms (the server's `learningPeriodMs`). Default 0. */
  readonly learningPeriodMs?: number;
  /**
   * When the snapshot on disk was taken, in Unix ms: the last one written,
   * or the one restored at start-up until then; `undefined` when there is
   * none (no `snapshotPath`, or none written yet). Default: none.
   */
  readonly snapshotTakenAtMs?: () => number | undefined;
  /** The clock the ages are measured on, Unix ms. Default `Date.now`. */
  readonly now?: () => number;
  /** Which namespaces the `fair_state_namespace_*` metrics label. Default: the first 20. */
  readonly namespaces?: NamespaceLabelling;
}

/** The counters the Sync handler moves as it works. */
export interface SyncMetrics {
  readonly connectedClients: Gauge;
  /** Streams refused before they started, by the limit hit. */
  readonly streamsRefused: Counter<"reason">;
  readonly streamsClosed: Counter<"code">;
  readonly deltaUpdatesReceived: Counter;
  readonly deltasReceived: Counter;
  readonly deltaUpdatesRejected: Counter<"code">;
  /** Deltas in rejected messages: counted with the store's drops under reason `rejected`. */
  readonly rejectedDeltas: { count: number };
  /** StateOffers refused (each ending its stream): counted with the store's offers under result `rejected`. */
  readonly rejectedOffers: { count: number };
  readonly fullStateRequests: Counter;
  readonly fullStateBucketsSent: Counter;
  readonly aggregationLatency: Histogram;
  /** Requests a stream could not complete because the store was unavailable (`apply`, `get_seed`, `offer`). */
  readonly storeUnavailable: Counter<"operation">;
  /** The per-namespace series, bounded (`fair_state_namespace_*`). */
  readonly namespaces: NamespaceMetrics;
}

/**
 * Every metric of one server, on its own registry (so several servers can
 * share a process). A store with metrics of its own registers them on the
 * same registry (`Store.registerMetrics`).
 */
export interface StateServerMetrics extends SyncMetrics {
  readonly registry: Registry;
  /** Sync streams refused for their token, by reason (missing, unknown, namespace). */
  readonly authFailures: Counter<"reason">;
  /** Snapshot writes, by result (ok, error). */
  readonly snapshotWrites: Counter<"result">;
  /** Open HTTP/2 connections on the gRPC listener, within `maxConnections`. */
  readonly connections: Gauge;
  /** Connections refused, by the limit hit (`max_connections`). */
  readonly connectionsRefused: Counter<"reason">;
  /**
   * Connections the server closed, by reason (`keepalive_timeout`, `idle`,
   * `connection_timeout`, `evicted`).
   */
  readonly connectionsClosed: Counter<"reason">;
  /**
   * Bytes of request messages not yet complete that the server holds, over
   * every stream, within `maxBufferedRequestBytes` (`request-budget.ts`).
   */
  readonly bufferedRequestBytes: Gauge;
}

const emptyStats: StoreStats = {
  namespaces: 0,
  seeds: 0,
  buckets: 0,
  appliedDeltas: 0,
  droppedDeltas: { too_old: 0, too_far_future: 0 },
  clampedTimestamps: 0,
  limitRefusals: { max_seeds_per_namespace: 0, max_buckets_per_seed: 0, max_namespaces: 0 },
  evictedSeeds: 0,
  evictedBuckets: 0,
  offers: { applied: 0, learning_over: 0, too_old: 0, too_far_future: 0 },
};

/** What became of offers, as the store counts them: every label of `fair_state_offers_total` but `rejected`. */
const offerStatuses: readonly OfferStatus[] = [
  "applied",
  "learning_over",
  "too_old",
  "too_far_future",
];

/**
 * The store's stats for one scrape: every metric that reads them shares one
 * read (one round of Redis commands per scrape, not one per metric), and a
 * read that fails (Redis down) shows the last figures read rather than
 * failing the scrape.
 */
function sharedStoreStats(read: () => MaybePromise<StoreStats>): () => Promise<StoreStats> {
  let pending: Promise<StoreStats> | undefined;
  let last = emptyStats;
  return () => {
    pending ??= (async () => {
      try {
        last = await read();
      } catch {
        // Keep the last figures; the store's own error metrics tell the story.
      } finally {
        // Cleared once every collector of this scrape has had its turn.
        setImmediate(() => {
          pending = undefined;
        });
      }
      return last;
    })();
    return pending;
  };
}

/**
 * Creates the server's metrics: `fair_state_*` following Prometheus naming
 * (`_total` counters, `_seconds` durations) plus the process defaults.
 * Store and hub figures are read at scrape time, so the hot path pays
 * nothing for them.
 */
export function createMetrics(sources: MetricSources): StateServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const storeStats = sharedStoreStats(sources.storeStats);
  const now = sources.now ?? Date.now;
  const epoch = sources.epoch ?? (() => undefined);
  const learningPeriodMs = sources.learningPeriodMs ?? 0;
  const snapshotTakenAtMs = sources.snapshotTakenAtMs ?? (() => undefined);

  new Gauge({
    name: "fair_state_build_info",
    help: "1, labelled with the server's version and the Node.js version it runs on.",
    labelNames: ["version", "node_version"],
    registers,
  }).set({ version: serverVersion, node_version: process.version }, 1);

  const rejectedDeltas = { count: 0 };
  const rejectedOffers = { count: 0 };
  const mirror = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const storeMirror = (name: string, help: string, read: (stats: StoreStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      async collect() {
        const value = read(await storeStats());
        this.reset();
        this.inc(value);
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  const storeGauge = (name: string, help: string, read: (stats: StoreStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(read(await storeStats()));
      },
    });

  new Counter({
    name: "fair_state_deltas_dropped_total",
    help: "Deltas not applied, by reason: too_old (seed behind the eviction horizon), too_far_future (seed too far ahead), rejected (in a message refused as invalid).",
    labelNames: ["reason"],
    registers,
    async collect() {
      const { droppedDeltas } = await storeStats();
      this.reset();
      this.labels("too_old").inc(droppedDeltas.too_old);
      this.labels("too_far_future").inc(droppedDeltas.too_far_future);
      this.labels("rejected").inc(rejectedDeltas.count);
    },
  });
  new Counter({
    name: "fair_state_store_limit_refusals_total",
    help: "DeltaUpdates refused whole (RESOURCE_EXHAUSTED) because they would break a store limit, by limit: max_seeds_per_namespace, max_buckets_per_seed, max_namespaces.",
    labelNames: ["limit"],
    registers,
    async collect() {
      const { limitRefusals } = await storeStats();
      this.reset();
      this.labels("max_seeds_per_namespace").inc(limitRefusals.max_seeds_per_namespace);
      this.labels("max_buckets_per_seed").inc(limitRefusals.max_buckets_per_seed);
      // A store of an older version may not count it yet.
      this.labels("max_namespaces").inc(limitRefusals.max_namespaces ?? 0);
    },
  });
  storeMirror(
    "fair_state_deltas_applied_total",
    "Deltas applied to the store.",
    (stats) => stats.appliedDeltas,
  );
  storeMirror(
    "fair_state_timestamps_clamped_total",
    "Applied deltas whose timestamp was ahead of the server clock by more than maxClockSkewMs, and clamped.",
    (stats) => stats.clampedTimestamps,
  );
  storeMirror(
    "fair_state_seeds_evicted_total",
    "Seeds removed by eviction.",
    (stats) => stats.evictedSeeds,
  );
  storeGauge(
    "fair_state_store_buckets",
    "Non-default buckets held by the store (on Redis: by every replica).",
    (stats) => stats.buckets,
  );
  storeGauge(
    "fair_state_store_seeds",
    "Seeds held by the store, over all namespaces (on Redis: by every replica).",
    (stats) => stats.seeds,
  );
  mirror(
    "fair_state_buckets_broadcast_total",
    "Bucket updates delivered to streams (a bucket sent to 8 streams counts 8).",
    () => sources.hubStats().bucketsDelivered,
  );
  mirror(
    "fair_state_broadcast_batches_total",
    "Broadcast messages delivered to streams.",
    () => sources.hubStats().batchesDelivered,
  );
  mirror(
    "fair_state_slow_consumer_disconnects_total",
    "Streams closed because they fell too far behind the broadcast.",
    () => sources.hubStats().slowConsumerCloses,
  );
  new Counter({
    name: "fair_state_offers_total",
    help: "StateOffer messages (learning mode), by result: applied (merged by maximum, whether or not a bucket rose), learning_over (refused: the epoch was older than learningPeriodMs), too_old and too_far_future (seed outside the live range), rejected (invalid or over a limit: ended its stream). Only the last ends a stream.",
    labelNames: ["result"],
    registers,
    async collect() {
      // A store of an older version may not count offers yet.
      const offers = (await storeStats()).offers ?? emptyStats.offers;
      this.reset();
      for (const status of offerStatuses) this.labels(status).inc(offers[status] ?? 0);
      this.labels("rejected").inc(rejectedOffers.count);
    },
  });
  new Gauge({
    name: "fair_state_epoch_info",
    help: "1, labelled with the state epoch the server announces in fair-state-epoch; no series while the store has no epoch (or does not know it yet). The label changes when the epoch does.",
    labelNames: ["epoch"],
    registers,
    collect() {
      this.reset();
      const current = epoch();
      if (current !== undefined) this.labels(current.id).set(1);
    },
  });
  gauge(
    "fair_state_epoch_age_seconds",
    "Seconds since the current state epoch began (on Redis: since it lost its data); NaN while the store has no epoch.",
    () => {
      const current = epoch();
      return current === undefined ? Number.NaN : (now() - current.startedAtMs) / 1000;
    },
  );
  gauge(
    "fair_state_learning",
    "1 while clients' StateOffers are merged: the current epoch is at most learningPeriodMs old (as the stores count it); 0 after that, and while the store has no epoch.",
    () => {
      const current = epoch();
      return current !== undefined && isLearning(current, now(), learningPeriodMs) ? 1 : 0;
    },
  );
  gauge(
    "fair_state_snapshot_age_seconds",
    "Seconds since the snapshot on disk was taken: the last one written, or until then the one restored at start-up; NaN without snapshotPath and until a first snapshot exists.",
    () => {
      const takenAtMs = snapshotTakenAtMs();
      return takenAtMs === undefined ? Number.NaN : (now() - takenAtMs) / 1000;
    },
  );
  gauge(
    "fair_state_serving",
    "1 while the server is SERVING; 0 before it starts, from the moment shutdown begins, and while the store is not ready (Redis unreachable).",
    () => (sources.serving() ? 1 : 0),
  );

  return {
    registry,
    rejectedDeltas,
    rejectedOffers,
    storeUnavailable: new Counter({
      name: "fair_state_store_unavailable_total",
      help: "Requests a stream could not complete because the store was unavailable, by operation (apply: a DeltaUpdate, get_seed: a StateRequest, offer: a StateOffer); each ended its stream with UNAVAILABLE.",
      labelNames: ["operation"],
      registers,
    }),
    authFailures: new Counter({
      name: "fair_state_auth_failures_total",
      help: "Sync streams refused for their bearer token, by reason: missing, unknown (or revoked), namespace (not allowed for it).",
      labelNames: ["reason"],
      registers,
    }),
    snapshotWrites: new Counter({
      name: "fair_state_snapshot_writes_total",
      help: "Snapshots of the in-memory store written to snapshotPath, by result (ok, error).",
      labelNames: ["result"],
      registers,
    }),
    connections: new Gauge({
      name: "fair_state_connections",
      help: "Open HTTP/2 connections on the gRPC listener, counted against maxConnections.",
      registers,
    }),
    connectionsRefused: new Counter({
      name: "fair_state_connections_refused_total",
      help: "HTTP/2 connections refused by a limit: max_connections (their streams got RESOURCE_EXHAUSTED, health checks were answered).",
      labelNames: ["reason"],
      registers,
    }),
    connectionsClosed: new Counter({
      name: "fair_state_connections_closed_total",
      help: "HTTP/2 connections the server closed, by reason: keepalive_timeout (a PING went unanswered), idle (no stream for idleTimeoutMs), connection_timeout (no stream within connectionTimeoutMs of connecting), evicted (never admitted to Sync, closed at maxConnections to make room for a new connection).",
      labelNames: ["reason"],
      registers,
    }),
    streamsRefused: new Counter({
      name: "fair_state_streams_refused_total",
      help: "Streams refused by a limit: max_streams (before they started), max_requests_per_second (ended for flooding), message_timeout (a request message still incomplete messageTimeoutMs after its first byte), max_buffered_request_bytes (a request chunk that would have taken the unfinished messages held past maxBufferedRequestBytes).",
      labelNames: ["reason"],
      registers,
    }),
    connectedClients: new Gauge({
      name: "fair_state_connected_clients",
      help: "Open Sync streams.",
      registers,
    }),
    streamsClosed: new Counter({
      name: "fair_state_streams_closed_total",
      help: "Sync streams ended, by gRPC status code (ok when the client ended it).",
      labelNames: ["code"],
      registers,
    }),
    deltaUpdatesReceived: new Counter({
      name: "fair_state_delta_updates_received_total",
      help: "DeltaUpdate messages received.",
      registers,
    }),
    deltasReceived: new Counter({
      name: "fair_state_deltas_received_total",
      help: "Bucket deltas received, in every DeltaUpdate.",
      registers,
    }),
    deltaUpdatesRejected: new Counter({
      name: "fair_state_delta_updates_rejected_total",
      help: "DeltaUpdate messages refused, by gRPC status code; each ends its stream.",
      labelNames: ["code"],
      registers,
    }),
    fullStateRequests: new Counter({
      name: "fair_state_full_state_requests_total",
      help: "StateRequest messages answered.",
      registers,
    }),
    fullStateBucketsSent: new Counter({
      name: "fair_state_full_state_buckets_sent_total",
      help: "Buckets sent in full-state replies.",
      registers,
    }),
    aggregationLatency: new Histogram({
      name: "fair_state_aggregation_latency_seconds",
      help: "From a DeltaUpdate's arrival to its changed buckets being handed to the broadcast hub (in interval mode they wait up to one broadcastIntervalMs more).",
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
      registers,
    }),
    namespaces: new NamespaceMetrics(registry, sources.namespaces ?? { always: [], max: 20 }),
    bufferedRequestBytes: new Gauge({
      name: "fair_state_buffered_request_bytes",
      help: "Bytes of request messages not yet complete that the server holds, over every stream; at most maxBufferedRequestBytes.",
      registers,
    }),
  };
}
