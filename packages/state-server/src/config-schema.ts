import parseDuration from "parse-duration";
import { z } from "zod";

/**
 * A duration in milliseconds: a number, a string of digits (`"250"`: the
 * key's name says ms) or a string with a unit (`"250ms"`, `"5m"`,
 * `"1h30m"`). Parsed to milliseconds.
 */
const duration = (options: { min: number }) =>
  z
    .union([z.number(), z.string()])
    .transform((value, ctx) => {
      if (typeof value === "number") return value;
      const text = value.trim();
      const ms = /^-?\d+(\.\d+)?$/.test(text)
        ? Number(text)
        : /[a-z]/i.test(text)
          ? parseDuration(text)
          : null;
      if (ms === null || ms === undefined || !Number.isFinite(ms)) {
        ctx.addIssue({
          code: "custom",
          message: `expected milliseconds ("250") or a duration with a unit such as "250ms", "30s" or "5m", got ${JSON.stringify(value)}`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .pipe(
      z
        .number()
        .int("must be a whole number of milliseconds")
        .min(options.min, `must be at least ${options.min} ms`),
    );

/** A duration that is 0 (the feature off) or at least `min` ms. */
const offOrAtLeast = (min: number, zero: string) =>
  duration({ min: 0 }).refine((ms) => ms === 0 || ms >= min, {
    message: `must be 0 (${zero}) or at least ${min} ms`,
  });

/** A number; from the environment or a flag it arrives as a string. */
const numberFromText = (schema: z.ZodNumber) =>
  z
    .union([z.number(), z.string().trim().min(1).transform(Number)])
    .pipe(z.number({ error: "expected a number" }).pipe(schema));

const integer = (min: number, max: number) =>
  numberFromText(z.number().int("must be an integer").min(min).max(max));

/** true or false; from the environment or a flag, "true" or "false". */
const flag = z
  .union([z.boolean(), z.enum(["true", "false"])])
  .transform((value) => value === true || value === "true");

/** `host:port`, `:port` (every interface) or `[ipv6]:port`; port 0 picks a free port. */
const address = z
  .string()
  .refine(
    (value) =>
      /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/.test(value) &&
      Number(value.slice(value.lastIndexOf(":") + 1)) <= 65535,
    'expected "host:port", ":port" or "[ipv6]:port" with a port from 0 to 65535',
  );

/** A file path; absent means the feature is off. */
const optionalPath = z.string().min(1, "expected a file path").optional();

/**
 * Every configuration key: its schema, its default and what it means. The
 * one source for validation, `--help`, and the environment and flag names.
 */
export const configKeys = {
  grpcListenAddress: {
    schema: address,
    default: ":50051",
    help: "Address for the Sync and health gRPC services (HTTP/2 without TLS).",
  },
  metricsListenAddress: {
    schema: address,
    default: ":9090",
    help: "Address for /metrics, /healthz and /readyz (HTTP/1.1).",
  },
  metricsNamespaces: {
    schema: z.union([z.array(z.string()), z.string()]).transform((value) =>
      typeof value === "string"
        ? value
            .split(",")
            .map((name) => name.trim())
            .filter((name) => name !== "")
        : value,
    ),
    default: [],
    help: 'Namespaces that always get their own namespace label on the fair_state_namespace_* metrics (a list; from env or flags, comma-separated: "checkout,search").',
  },
  maxMetricsNamespaces: {
    schema: integer(0, 10_000),
    default: 20,
    help: 'Further namespaces labelled on the fair_state_namespace_* metrics, the first ones to open a stream; the rest share namespace="__other__", so a client cannot grow the series without bound.',
  },
  windowMs: {
    schema: duration({ min: 1 }),
    default: "5m",
    help: "Length of a seed window; must equal the trackers' rotation period (rotationFrequencyMs).",
  },
  seedEvictionTtlMs: {
    schema: duration({ min: 1 }),
    default: "15m",
    help: "Seeds whose window started longer ago than this are evicted, and deltas for them dropped.",
  },
  broadcastIntervalMs: {
    schema: duration({ min: 0 }),
    default: "0ms",
    help: "0 broadcasts after every applied update; more coalesces changes and flushes every interval.",
  },
  decayRatePerSecond: {
    schema: numberFromText(z.number().min(0, "must be ≥ 0").max(1000)),
    default: 0.01,
    help: "Decay rate λ per second; must equal the trackers' Lambda.",
  },
  maxClockSkewMs: {
    schema: duration({ min: 0 }).optional(),
    default: undefined,
    help: "Timestamps further ahead of the server clock are clamped to now plus this (default: 10% of windowMs).",
  },
  maxRows: {
    schema: integer(1, 2 ** 16),
    default: 256,
    help: "row_id must be below this (FAIR levels).",
  },
  maxCols: {
    schema: integer(1, 2 ** 32),
    default: 2 ** 24,
    help: "col_id must be below this (buckets per level).",
  },
  maxMessageBytes: {
    schema: integer(1024, 2 ** 30),
    default: 4 * 1024 * 1024,
    help: "Largest message accepted or sent, in bytes; larger requests get RESOURCE_EXHAUSTED.",
  },
  maxDeltasPerMessage: {
    schema: integer(1, 2 ** 24),
    default: 100_000,
    help: "Most deltas in one DeltaUpdate; more gets RESOURCE_EXHAUSTED.",
  },
  maxStreams: {
    schema: integer(1, 2 ** 24),
    default: 10_000,
    help: "Most Sync streams open at once, over all connections; more get RESOURCE_EXHAUSTED.",
  },
  maxRequestsPerSecond: {
    schema: integer(1, 2 ** 24),
    default: 1_000,
    help: "Most requests one Sync stream may send per second (bursts up to as many); more end it with RESOURCE_EXHAUSTED.",
  },
  maxStreamsPerConnection: {
    schema: integer(1, 2 ** 31 - 1),
    default: 100,
    help: "HTTP/2 concurrent streams a connection may open (the SETTINGS_MAX_CONCURRENT_STREAMS the server announces).",
  },
  maxConnections: {
    schema: integer(1, 2 ** 24),
    default: 10_000,
    help: "Most HTTP/2 connections open at once on the gRPC listener; streams on more get RESOURCE_EXHAUSTED (health checks are still answered) and the connection is closed.",
  },
  keepaliveIntervalMs: {
    schema: offOrAtLeast(1000, "no PINGs"),
    default: "30s",
    help: "A connection the client has sent nothing on for this long gets an HTTP/2 PING; 0 sends none.",
  },
  keepaliveTimeoutMs: {
    schema: duration({ min: 1000 }),
    default: "20s",
    help: "A PING unanswered for this long marks the client dead: its connection is closed.",
  },
  idleTimeoutMs: {
    schema: offOrAtLeast(1000, "never"),
    default: "5m",
    help: "A connection without a stream for this long is closed (GOAWAY), as gRPC's MaxConnectionIdle; 0 never closes one.",
  },
  maxStallMs: {
    schema: duration({ min: 1000 }),
    default: "10s",
    help: "A stream that takes no message (broadcast or full-state part) for this long is cut off as a slow consumer (RESOURCE_EXHAUSTED) and resyncs when it reconnects.",
  },
  connectionTimeoutMs: {
    schema: duration({ min: 1000 }),
    default: "20s",
    help: "A new connection that has not opened a stream within this is closed, so idle connections cannot hold the server's connection slots.",
  },
  messageTimeoutMs: {
    schema: duration({ min: 1000 }),
    default: "30s",
    help: "A request message not complete this long after its first byte ends its stream (RESOURCE_EXHAUSTED), so a slow sender cannot hold buffers.",
  },
  maxBufferedRequestBytes: {
    schema: integer(1024 * 1024, 2 ** 40),
    default: 256 * 1024 * 1024,
    help: "Most bytes of unfinished request messages the server holds over all streams; a stream that would take it past this is ended (RESOURCE_EXHAUSTED).",
  },
  maxSeedsPerNamespace: {
    schema: integer(1, 2 ** 20),
    default: 64,
    help: "Most live seeds one namespace may hold; an update adding one more gets RESOURCE_EXHAUSTED.",
  },
  maxBucketsPerSeed: {
    schema: integer(1, Number.MAX_SAFE_INTEGER),
    default: 2 ** 22,
    help: "Most buckets one seed of one namespace may hold; an update that would hold more gets RESOURCE_EXHAUSTED.",
  },
  learningPeriodMs: {
    schema: duration({ min: 0 }),
    default: "30s",
    help: "How long after the state's epoch began (start-up; on Redis, since it lost its data) the server merges clients' offers of their views; later offers are refused and counted.",
  },
  maxNamespaces: {
    schema: integer(1, 2 ** 20),
    default: 1024,
    help: "Most namespaces the store may hold buckets in; an update that would start one more gets RESOURCE_EXHAUSTED.",
  },
  compression: {
    schema: z.enum(["none", "gzip"]),
    default: "none",
    help: 'Message compression the server accepts and sends: "none" or "gzip" (costs CPU on fan-out).',
  },
  shutdownGracePeriodMs: {
    schema: duration({ min: 0 }),
    default: "10s",
    help: "On SIGTERM/SIGINT, how long open streams may take to finish before they are cut.",
  },
  store: {
    schema: z.enum(["memory", "redis"]),
    default: "memory",
    help: 'Where the shared state lives: "memory" (one process) or "redis" (several replicas on one Redis 7+ or Valkey).',
  },
  redisMode: {
    schema: z.enum(["standalone", "cluster", "sentinel"]),
    default: "standalone",
    help: 'How Redis is deployed when store is redis: "standalone" (one server), "cluster" (Redis Cluster; redisUrl lists seed nodes) or "sentinel" (redisUrl lists Sentinels, which name the primary redisSentinelName).',
  },
  redisUrl: {
    schema: z
      .string()
      .refine(
        (value) => value.split(",").every((part) => /^rediss?:\/\/[^\s,]+$/.test(part.trim())),
        {
          message:
            'expected a URL like "redis://host:6379" or "rediss://user:password@host:6380/0", or (cluster, sentinel) several separated by commas',
        },
      ),
    default: "redis://127.0.0.1:6379",
    help: "The Redis (or Valkey) server when store is redis: redis://[user:password@]host[:port][/db], rediss:// for TLS; in cluster and sentinel mode a comma-separated list of seed nodes or Sentinels.",
  },
  redisSentinelName: {
    schema: z.string().min(1),
    default: "fair",
    help: "The primary's name in Sentinel (sentinel monitor <name> …) when redisMode is sentinel.",
  },
  redisSlotGroups: {
    schema: z.union([z.literal("auto"), integer(1, 256)]),
    default: "auto",
    help: 'Slot groups the buckets spread over (1–256; every replica on one prefix must agree): "auto" is 16 in cluster mode, 1 otherwise.',
  },
  redisFlushIntervalMs: {
    schema: duration({ min: 0 }).pipe(z.number().max(1_000, "must be at most 1000 ms")),
    default: "0",
    help: "How long each replica sums the adjustments it receives per bucket before it sends them to Redis (a few ms saves Redis CPU on hot buckets); 0 sends each update at once.",
  },
  redisKeyPrefix: {
    schema: z
      .string()
      .min(1)
      .refine((value) => !/[\s{}]/.test(value), {
        message: "must not contain whitespace or braces",
      }),
    default: "fair:",
    help: "Prefix of every Redis key and of the change channel; replicas that share a view use the same one.",
  },
  redisCommandTimeoutMs: {
    schema: duration({ min: 1 }),
    default: "2s",
    help: "How long a Redis command may take before the update or full-state request that needed it fails with UNAVAILABLE.",
  },
  tlsCertFile: {
    schema: optionalPath,
    default: undefined,
    help: "PEM certificate for the gRPC listener; with tlsKeyFile turns TLS on. Reloaded on SIGHUP or when the file changes.",
  },
  tlsKeyFile: {
    schema: optionalPath,
    default: undefined,
    help: "PEM private key for tlsCertFile.",
  },
  tlsClientCaFile: {
    schema: optionalPath,
    default: undefined,
    help: "PEM CA bundle; when set, clients must present a certificate it signed (mTLS).",
  },
  authTokensFile: {
    schema: optionalPath,
    default: undefined,
    help: 'Bearer tokens that may use Sync, one per line ("token" or "token ns1,ns2"); unset: no auth. Reloaded on SIGHUP or change.',
  },
  stateDir: {
    schema: optionalPath,
    default: undefined,
    help: "A writable directory the server keeps its state in: with the in-memory store and no snapshotPath, snapshots go to <stateDir>/state.snapshot. `pnpm start` sets .fair-state, the image /var/lib/fair-state.",
  },
  snapshotPath: {
    schema: optionalPath,
    default: undefined,
    help: "File the in-memory store is written to at snapshotIntervalMs and on shutdown, and loaded from at start-up (default: <stateDir>/state.snapshot when stateDir is set).",
  },
  snapshotIntervalMs: {
    schema: duration({ min: 1000 }),
    default: "30s",
    help: "How often the snapshot is written (with snapshotPath); a crash loses at most this much.",
  },
  exitWithParent: {
    schema: flag,
    default: false,
    help: "Shut down, as on SIGTERM, when the process that started the server exits: for launchers that do not pass signals on (pnpm start sets it, since pnpm does not).",
  },
  logLevel: {
    schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
    default: "info",
    help: "Least severe log level written: trace, debug, info, warn, error, fatal or silent.",
  },
} as const;

/** The name of a configuration key, as written in a config file. */
export type ConfigKey = keyof typeof configKeys;

/** The server's effective configuration: durations in milliseconds. */
export type StateServerConfig = {
  -readonly [K in Exclude<ConfigKey, "maxClockSkewMs">]: z.output<(typeof configKeys)[K]["schema"]>;
} & {
  /** Resolved: when not configured, 10% of `windowMs`. */
  maxClockSkewMs: number;
};

/**
 * The names keys had before every duration name carried its unit, each with
 * the key it now is. They still work for one release, in a config file, as
 * `FAIR_STATE_<OLD>` and as `--old-flag`, meaning exactly the new key; each
 * use is reported in `LoadedConfig.deprecations`. They go in the next release.
 */
export const deprecatedConfigKeys = Object.freeze({
  seedWindowDuration: "windowMs",
  seedEvictionTtl: "seedEvictionTtlMs",
  broadcastInterval: "broadcastIntervalMs",
  decayRate: "decayRatePerSecond",
  maxClockSkew: "maxClockSkewMs",
  keepaliveInterval: "keepaliveIntervalMs",
  keepaliveTimeout: "keepaliveTimeoutMs",
  idleTimeout: "idleTimeoutMs",
  shutdownGracePeriod: "shutdownGracePeriodMs",
  redisCommandTimeout: "redisCommandTimeoutMs",
  snapshotInterval: "snapshotIntervalMs",
} as const satisfies Record<string, ConfigKey>);

/** A deprecated key name, still accepted for one release: see {@link deprecatedConfigKeys}. */
export type DeprecatedConfigKey = keyof typeof deprecatedConfigKeys;

/** `grpcListenAddress` → `FAIR_STATE_GRPC_LISTEN_ADDRESS`. */
export function envName(key: ConfigKey | DeprecatedConfigKey): string {
  return `FAIR_STATE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** `grpcListenAddress` → `--grpc-listen-address`. */
export function flagName(key: ConfigKey | DeprecatedConfigKey): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
