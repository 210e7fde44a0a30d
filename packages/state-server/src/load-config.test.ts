import { describe, expect, test } from "vitest";
import {
  ConfigError,
  type ConfigKey,
  configHelp,
  configKeys,
  deprecatedConfigKeys,
  envName,
  flagName,
  loadConfig,
} from "./index.js";

const files = (contents: Record<string, string>) => (path: string) => {
  const text = contents[path];
  if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  return text;
};

function issuesOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("defaults", () => {
  test("with no sources, every key has the documented default", () => {
    const { config, origins, help } = loadConfig({ argv: [], env: {} });
    expect(config).toEqual({
      grpcListenAddress: ":50051",
      metricsListenAddress: ":9090",
      metricsNamespaces: [],
      maxMetricsNamespaces: 20,
      exitWithParent: false,
      windowMs: 300_000,
      seedEvictionTtlMs: 900_000,
      broadcastIntervalMs: 0,
      decayRatePerSecond: 0.01,
      maxClockSkewMs: 30_000,
      maxRows: 256,
      maxCols: 16_777_216,
      maxMessageBytes: 4_194_304,
      maxDeltasPerMessage: 100_000,
      compression: "none",
      shutdownGracePeriodMs: 10_000,
      store: "memory",
      redisMode: "standalone",
      redisUrl: "redis://127.0.0.1:6379",
      redisSentinelName: "fair",
      redisSlotGroups: "auto",
      redisFlushIntervalMs: 0,
      redisKeyPrefix: "fair:",
      redisCommandTimeoutMs: 2_000,
      logLevel: "info",
      snapshotIntervalMs: 30_000,
      maxStreams: 10_000,
      maxRequestsPerSecond: 1_000,
      maxStreamsPerConnection: 100,
      maxConnections: 10_000,
      keepaliveIntervalMs: 30_000,
      keepaliveTimeoutMs: 20_000,
      idleTimeoutMs: 300_000,
      connectionTimeoutMs: 20_000,
      maxStallMs: 10_000,
      messageTimeoutMs: 30_000,
      maxBufferedRequestBytes: 268_435_456,
      maxSeedsPerNamespace: 64,
      maxBucketsPerSeed: 4_194_304,
      maxNamespaces: 1024,
      learningPeriodMs: 30_000,
    });
    expect(config.stateDir).toBeUndefined();
    expect(config.snapshotPath).toBeUndefined();
    expect(new Set(Object.values(origins))).toEqual(new Set(["default"]));
    expect(help).toBe(false);
    expect(loadConfig({ argv: [], env: {} }).deprecations).toEqual([]);
  });

  test("a state directory turns snapshots on for the in-memory store; a snapshotPath of its own wins; Redis takes none", () => {
    const inDir = loadConfig({ argv: ["--state-dir=/var/lib/fair-state"], env: {} }).config;
    expect(inDir.snapshotPath).toBe("/var/lib/fair-state/state.snapshot");
    const own = loadConfig({
      argv: ["--state-dir=/var/lib/fair-state", "--snapshot-path=/tmp/x.snapshot"],
      env: {},
    }).config;
    expect(own.snapshotPath).toBe("/tmp/x.snapshot");
    const redis = loadConfig({
      argv: ["--state-dir=/var/lib/fair-state"],
      env: { FAIR_STATE_STORE: "redis" },
    }).config;
    expect(redis.snapshotPath).toBeUndefined();
  });

  test("the Redis store is chosen, and pointed at a server, by environment alone", () => {
    const { config } = loadConfig({
      argv: [],
      env: {
        FAIR_STATE_STORE: "redis",
        FAIR_STATE_REDIS_URL: "rediss://user:secret@redis.internal:6380/2",
        FAIR_STATE_REDIS_KEY_PREFIX: "fair-prod:",
        FAIR_STATE_REDIS_COMMAND_TIMEOUT_MS: "500ms",
      },
    });
    expect(config).toMatchObject({
      store: "redis",
      redisUrl: "rediss://user:secret@redis.internal:6380/2",
      redisKeyPrefix: "fair-prod:",
      redisCommandTimeoutMs: 500,
    });
  });

  test("a store other than memory or redis, a URL that is not redis://, or a prefix with braces is refused", () => {
    let caught: unknown;
    try {
      loadConfig({
        argv: ["--store", "etcd", "--redis-url", "http://x", "--redis-key-prefix", "{a}"],
        env: {},
      });
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).message.split("\n")).toEqual([
      expect.stringMatching(/^flag --store: store: /),
      expect.stringMatching(/^flag --redis-url: redisUrl: expected a URL like/),
      expect.stringMatching(/^flag --redis-key-prefix: redisKeyPrefix: must not contain/),
    ]);
  });

  test("maxClockSkewMs defaults to 10% of the configured window", () => {
    const { config } = loadConfig({ argv: ["--window-ms", "1m"], env: {} });
    expect(config.maxClockSkewMs).toBe(6_000);
  });
});

describe("each source", () => {
  test("a YAML file, named by --config", () => {
    const { config, origins } = loadConfig({
      argv: ["--config", "/etc/fair.yaml"],
      env: {},
      readFile: files({
        "/etc/fair.yaml": "decayRatePerSecond: 0.02\nbroadcastIntervalMs: 250ms\n",
      }),
    });
    expect(config.decayRatePerSecond).toBe(0.02);
    expect(config.broadcastIntervalMs).toBe(250);
    expect(origins.decayRatePerSecond).toBe("file");
  });

  test("a JSON file, named by FAIR_STATE_CONFIG, with durations as milliseconds", () => {
    const { config } = loadConfig({
      argv: [],
      env: { FAIR_STATE_CONFIG: "fair.json" },
      readFile: files({ "fair.json": '{"windowMs": 60000, "maxRows": 8}' }),
    });
    expect(config.windowMs).toBe(60_000);
    expect(config.maxRows).toBe(8);
  });

  test("the environment, as FAIR_STATE_ plus the key in SCREAMING_SNAKE_CASE", () => {
    expect(envName("grpcListenAddress")).toBe("FAIR_STATE_GRPC_LISTEN_ADDRESS");
    const { config, origins } = loadConfig({
      argv: [],
      env: {
        FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:50051",
        FAIR_STATE_DECAY_RATE_PER_SECOND: "0",
      },
    });
    expect(config.grpcListenAddress).toBe("127.0.0.1:50051");
    expect(config.decayRatePerSecond).toBe(0);
    expect(origins.grpcListenAddress).toBe("env");
  });

  test("flags, in both --key value and --key=value forms", () => {
    expect(flagName("seedEvictionTtlMs")).toBe("--seed-eviction-ttl-ms");
    const { config, origins } = loadConfig({
      argv: ["--seed-eviction-ttl-ms", "1h", "--log-level=debug", "--compression", "gzip"],
      env: {},
    });
    expect(config.seedEvictionTtlMs).toBe(3_600_000);
    expect(config.logLevel).toBe("debug");
    expect(config.compression).toBe("gzip");
    expect(origins.seedEvictionTtlMs).toBe("flag");
  });

  test("--help is reported, and the help text names every key's flag and environment variable", () => {
    expect(loadConfig({ argv: ["--help"], env: {} }).help).toBe(true);
    const help = configHelp();
    for (const key of Object.keys(configKeys) as (keyof typeof configKeys)[]) {
      expect(help).toContain(flagName(key));
      expect(help).toContain(envName(key));
    }
  });
});

test("a string of digits is milliseconds, from every source", () => {
  const { config, deprecations } = loadConfig({
    argv: ["--config", "c.yaml", "--window-ms", "60000", "--keepalive-timeout-ms=1500"],
    env: { FAIR_STATE_BROADCAST_INTERVAL_MS: "250", FAIR_STATE_MAX_CLOCK_SKEW_MS: " 0 " },
    readFile: files({ "c.yaml": 'snapshotIntervalMs: "5000"\nidleTimeoutMs: 2000\n' }),
  });
  expect(config).toMatchObject({
    windowMs: 60_000,
    keepaliveTimeoutMs: 1_500,
    broadcastIntervalMs: 250,
    maxClockSkewMs: 0,
    snapshotIntervalMs: 5_000,
    idleTimeoutMs: 2_000,
  });
  expect(deprecations).toEqual([]);
});

test("precedence is defaults < file < environment < flags", () => {
  const readFile = files({ "c.yaml": "decayRatePerSecond: 0.1\nmaxRows: 16\nmaxCols: 1000\n" });
  const { config, origins } = loadConfig({
    argv: ["--config", "c.yaml", "--decay-rate-per-second", "0.3"],
    env: { FAIR_STATE_DECAY_RATE_PER_SECOND: "0.2", FAIR_STATE_MAX_ROWS: "32" },
    readFile,
  });
  expect(config).toMatchObject({
    decayRatePerSecond: 0.3,
    maxRows: 32,
    maxCols: 1000,
    maxDeltasPerMessage: 100_000,
  });
  expect(origins).toMatchObject({
    decayRatePerSecond: "flag",
    maxRows: "env",
    maxCols: "file",
    maxDeltasPerMessage: "default",
  });
});

describe("bad values stop start-up with one issue per bad field, naming its source", () => {
  test("one from each source, all reported together", () => {
    const issues = issuesOf(() =>
      loadConfig({
        argv: ["--config", "bad.yaml", "--decay-rate-per-second", "fast"],
        env: { FAIR_STATE_GRPC_LISTEN_ADDRESS: "localhost" },
        readFile: files({ "bad.yaml": "windowMs: 0\nmaxRows: -1\n" }),
      }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "file bad.yaml: windowMs",
      "file bad.yaml: maxRows",
      "env FAIR_STATE_GRPC_LISTEN_ADDRESS: grpcListenAddress",
      "flag --decay-rate-per-second: decayRatePerSecond",
    ]);
    expect(issues[3]?.message).toBe("expected a number");
  });

  test("the error message has one line per issue", () => {
    const run = () =>
      loadConfig({ argv: ["--max-cols", "1.5", "--broadcast-interval-ms", "soon"], env: {} });
    expect(run).toThrow(ConfigError);
    const issues = issuesOf(run);
    expect(new ConfigError(issues).message.split("\n")).toEqual([
      'flag --broadcast-interval-ms: broadcastIntervalMs: expected milliseconds ("250") or a duration with a unit such as "250ms", "30s" or "5m", got "soon"',
      "flag --max-cols: maxCols: must be an integer",
    ]);
  });

  test.each([
    ["a duration that is not one", { FAIR_STATE_WINDOW_MS: "five minutes" }, "windowMs"],
    ["a fraction of a millisecond", { FAIR_STATE_WINDOW_MS: "1.5" }, "windowMs"],
    ["a negative duration", { FAIR_STATE_BROADCAST_INTERVAL_MS: "-5s" }, "broadcastIntervalMs"],
    ["a negative decay rate", { FAIR_STATE_DECAY_RATE_PER_SECOND: "-0.01" }, "decayRatePerSecond"],
    ["a port past 65535", { FAIR_STATE_METRICS_LISTEN_ADDRESS: ":70000" }, "metricsListenAddress"],
    ["an unknown log level", { FAIR_STATE_LOG_LEVEL: "loud" }, "logLevel"],
    ["an empty number", { FAIR_STATE_MAX_ROWS: " " }, "maxRows"],
  ])("%s", (_name, env, key) => {
    const issues = issuesOf(() => loadConfig({ argv: [], env }));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ key, source: `env ${Object.keys(env)[0]}` });
  });

  test("unknown keys in a file, unknown FAIR_STATE_ variables and unknown flags", () => {
    const issues = issuesOf(() =>
      loadConfig({
        argv: ["--config", "c.yaml"],
        env: { FAIR_STATE_DECAY: "0.1", FAIR_STATE_CONFIG_UNUSED: undefined, OTHER_VAR: "x" },
        readFile: files({ "c.yaml": "grpcListenAdress: ':1'\n" }),
      }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "file c.yaml: grpcListenAdress",
      "env FAIR_STATE_DECAY: config",
    ]);
    const flagIssues = issuesOf(() => loadConfig({ argv: ["--decay", "1"], env: {} }));
    expect(flagIssues[0]).toMatchObject({ source: "flags" });
    expect(flagIssues[0]?.message).toContain("--decay");
  });

  test("a flag whose value looks like another flag: one line saying how to write it", () => {
    const issues = issuesOf(() => loadConfig({ argv: ["--max-rows", "-3"], env: {} }));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain("--max-rows=-XYZ");
    expect(issues[0]?.message).not.toContain("\n");
  });

  test("a missing or malformed file", () => {
    const missing = issuesOf(() =>
      loadConfig({ argv: ["--config", "nope.yaml"], env: {}, readFile: files({}) }),
    );
    expect(missing[0]).toMatchObject({ source: "file nope.yaml", key: "config" });
    expect(missing[0]?.message).toContain("ENOENT");
    const list = issuesOf(() =>
      loadConfig({
        argv: ["--config", "l.yaml"],
        env: {},
        readFile: files({ "l.yaml": "- a\n- b\n" }),
      }),
    );
    expect(list[0]?.message).toBe("expected a mapping of keys to values");
  });

  test("TLS needs a certificate and a key, mTLS needs TLS, snapshots need the in-memory store", () => {
    const issues = issuesOf(() =>
      loadConfig({
        argv: [
          "--tls-client-ca-file",
          "ca.pem",
          "--tls-key-file",
          "k.pem",
          "--snapshot-path",
          "s.bin",
        ],
        env: { FAIR_STATE_STORE: "redis" },
      }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "flag --tls-key-file: tlsKeyFile",
      "flag --tls-client-ca-file: tlsClientCaFile",
      "flag --snapshot-path: snapshotPath",
    ]);
  });

  test("rules between keys name the source of the offending value", () => {
    const issues = issuesOf(() =>
      loadConfig({ argv: ["--seed-eviction-ttl-ms", "1m", "--max-clock-skew-ms", "10m"], env: {} }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "flag --seed-eviction-ttl-ms: seedEvictionTtlMs",
      "flag --max-clock-skew-ms: maxClockSkewMs",
    ]);
  });
});

describe("renamed keys: the old names work until the next release, each use reported", () => {
  const renamed = Object.entries(deprecatedConfigKeys) as [
    keyof typeof deprecatedConfigKeys,
    ConfigKey,
  ][];
  /** A value the key accepts (its default, or 1s for the derived clock skew), as text. */
  const valueFor = (key: ConfigKey) => String(configKeys[key].default ?? "1s");
  const later = "(it will stop working in the next release)";

  test.each(renamed)("%s means %s in a file, in the environment and as a flag", (old, key) => {
    const value = valueFor(key);
    const ways = [
      {
        by: (name: string) => ({
          argv: ["--config", "c.yaml"],
          env: {},
          readFile: files({ "c.yaml": `${name}: ${JSON.stringify(value)}\n` }),
        }),
        name: (k: string) => k,
        deprecation: `file c.yaml, key ${old} is deprecated: use ${key} ${later}`,
      },
      {
        by: (name: string) => ({ argv: [], env: { [name]: value } }),
        name: envName,
        deprecation: `env ${envName(old)} is deprecated: use ${envName(key)} ${later}`,
      },
      {
        by: (name: string) => ({ argv: [`${name}=${value}`], env: {} }),
        name: flagName,
        deprecation: `flag ${flagName(old)} is deprecated: use ${flagName(key)} ${later}`,
      },
    ] as const;
    for (const way of ways) {
      const current = loadConfig(way.by(way.name(key)));
      const deprecated = loadConfig(way.by(way.name(old)));
      expect(deprecated.config).toEqual(current.config);
      expect(deprecated.origins).toEqual(current.origins);
      expect(current.deprecations).toEqual([]);
      expect(deprecated.deprecations).toEqual([way.deprecation]);
    }
  });

  test("the deprecation is one line naming the old and the new name", () => {
    const { config, origins, deprecations } = loadConfig({
      argv: [],
      env: { FAIR_STATE_DECAY_RATE: "0.02" },
    });
    expect(config.decayRatePerSecond).toBe(0.02);
    expect(origins.decayRatePerSecond).toBe("env");
    expect(deprecations).toEqual([
      "env FAIR_STATE_DECAY_RATE is deprecated: use FAIR_STATE_DECAY_RATE_PER_SECOND (it will stop working in the next release)",
    ]);
  });

  test("across sources the usual precedence holds, whichever name each uses", () => {
    const { config, origins, deprecations } = loadConfig({
      argv: ["--config", "c.yaml", "--broadcast-interval", "100ms", "--window-ms", "1m"],
      env: { FAIR_STATE_DECAY_RATE: "0.2", FAIR_STATE_BROADCAST_INTERVAL_MS: "50" },
      readFile: files({
        "c.yaml": "decayRatePerSecond: 0.1\nseedWindowDuration: 2m\nsnapshotInterval: 5s\n",
      }),
    });
    expect(config).toMatchObject({
      decayRatePerSecond: 0.2,
      broadcastIntervalMs: 100,
      windowMs: 60_000,
      snapshotIntervalMs: 5_000,
    });
    expect(origins).toMatchObject({
      decayRatePerSecond: "env",
      broadcastIntervalMs: "flag",
      windowMs: "flag",
      snapshotIntervalMs: "file",
    });
    expect(deprecations).toEqual([
      `file c.yaml, key seedWindowDuration is deprecated: use windowMs ${later}`,
      `file c.yaml, key snapshotInterval is deprecated: use snapshotIntervalMs ${later}`,
      `env FAIR_STATE_DECAY_RATE is deprecated: use FAIR_STATE_DECAY_RATE_PER_SECOND ${later}`,
      `flag --broadcast-interval is deprecated: use --broadcast-interval-ms ${later}`,
    ]);
  });

  test("an old and a new name for one key in the same source is refused, naming both", () => {
    const run = () =>
      loadConfig({
        argv: ["--config", "c.yaml", "--decay-rate", "0.1", "--decay-rate-per-second", "0.1"],
        env: { FAIR_STATE_IDLE_TIMEOUT: "0", FAIR_STATE_IDLE_TIMEOUT_MS: "5s" },
        readFile: files({ "c.yaml": "windowMs: 5m\nseedWindowDuration: 5m\n" }),
      });
    expect(run).toThrow(ConfigError);
    expect(new ConfigError(issuesOf(run)).message.split("\n")).toEqual([
      "file c.yaml, key seedWindowDuration: windowMs: both seedWindowDuration (deprecated) and windowMs are set: keep only windowMs",
      "env FAIR_STATE_IDLE_TIMEOUT: idleTimeoutMs: both FAIR_STATE_IDLE_TIMEOUT (deprecated) and FAIR_STATE_IDLE_TIMEOUT_MS are set: keep only FAIR_STATE_IDLE_TIMEOUT_MS",
      "flag --decay-rate: decayRatePerSecond: both --decay-rate (deprecated) and --decay-rate-per-second are set: keep only --decay-rate-per-second",
    ]);
  });

  test("a bad value, or a broken rule, under an old name names the old name as its source", () => {
    const issues = issuesOf(() =>
      loadConfig({
        argv: ["--config", "c.yaml", "--seed-eviction-ttl", "1m"],
        env: { FAIR_STATE_KEEPALIVE_INTERVAL: "10ms" },
        readFile: files({ "c.yaml": "decayRate: fast\n" }),
      }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}: ${i.message}`)).toEqual([
      "file c.yaml, key decayRate: decayRatePerSecond: expected a number",
      "env FAIR_STATE_KEEPALIVE_INTERVAL: keepaliveIntervalMs: must be 0 (no PINGs) or at least 1000 ms",
    ]);
    const rule = issuesOf(() => loadConfig({ argv: ["--seed-eviction-ttl", "1m"], env: {} }));
    expect(rule).toEqual([
      {
        source: "flag --seed-eviction-ttl",
        key: "seedEvictionTtlMs",
        message: "must be at least windowMs (300000 ms), or the current window would be evicted",
      },
    ]);
  });

  test("--help lists the new names only, and says which old names are still accepted", () => {
    const help = configHelp();
    const words = new Set(help.split(/[\s;,]+/));
    for (const [old, key] of renamed) {
      expect(words).not.toContain(flagName(old));
      expect(words).not.toContain(envName(old));
      expect(words).toContain(flagName(key));
      expect(help).toContain(`${old} → ${key}`);
    }
  });
});
