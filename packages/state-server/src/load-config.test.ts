import { describe, expect, test } from "vitest";
import { ConfigError, configHelp, configKeys, envName, flagName, loadConfig } from "./index.js";

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
      seedWindowDuration: 300_000,
      seedEvictionTtl: 900_000,
      broadcastInterval: 0,
      decayRate: 0.01,
      maxClockSkew: 30_000,
      maxRows: 256,
      maxCols: 16_777_216,
      maxMessageBytes: 4_194_304,
      maxDeltasPerMessage: 100_000,
      compression: "none",
      shutdownGracePeriod: 10_000,
      store: "memory",
      redisUrl: "redis://127.0.0.1:6379",
      redisKeyPrefix: "fair:",
      redisCommandTimeout: 2_000,
      logLevel: "info",
      snapshotInterval: 30_000,
      maxStreams: 10_000,
      maxRequestsPerSecond: 1_000,
      maxStreamsPerConnection: 100,
      maxConnections: 10_000,
      keepaliveInterval: 30_000,
      keepaliveTimeout: 20_000,
      idleTimeout: 0,
      maxSeedsPerNamespace: 64,
      maxBucketsPerSeed: 4_194_304,
    });
    expect(new Set(Object.values(origins))).toEqual(new Set(["default"]));
    expect(help).toBe(false);
  });

  test("the Redis store is chosen, and pointed at a server, by environment alone", () => {
    const { config } = loadConfig({
      argv: [],
      env: {
        FAIR_STATE_STORE: "redis",
        FAIR_STATE_REDIS_URL: "rediss://user:secret@redis.internal:6380/2",
        FAIR_STATE_REDIS_KEY_PREFIX: "fair-prod:",
        FAIR_STATE_REDIS_COMMAND_TIMEOUT: "500ms",
      },
    });
    expect(config).toMatchObject({
      store: "redis",
      redisUrl: "rediss://user:secret@redis.internal:6380/2",
      redisKeyPrefix: "fair-prod:",
      redisCommandTimeout: 500,
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

  test("maxClockSkew defaults to 10% of the configured window", () => {
    const { config } = loadConfig({ argv: ["--seed-window-duration", "1m"], env: {} });
    expect(config.maxClockSkew).toBe(6_000);
  });
});

describe("each source", () => {
  test("a YAML file, named by --config", () => {
    const { config, origins } = loadConfig({
      argv: ["--config", "/etc/fair.yaml"],
      env: {},
      readFile: files({ "/etc/fair.yaml": "decayRate: 0.02\nbroadcastInterval: 250ms\n" }),
    });
    expect(config.decayRate).toBe(0.02);
    expect(config.broadcastInterval).toBe(250);
    expect(origins.decayRate).toBe("file");
  });

  test("a JSON file, named by FAIR_STATE_CONFIG, with durations as milliseconds", () => {
    const { config } = loadConfig({
      argv: [],
      env: { FAIR_STATE_CONFIG: "fair.json" },
      readFile: files({ "fair.json": '{"seedWindowDuration": 60000, "maxRows": 8}' }),
    });
    expect(config.seedWindowDuration).toBe(60_000);
    expect(config.maxRows).toBe(8);
  });

  test("the environment, as FAIR_STATE_ plus the key in SCREAMING_SNAKE_CASE", () => {
    expect(envName("grpcListenAddress")).toBe("FAIR_STATE_GRPC_LISTEN_ADDRESS");
    const { config, origins } = loadConfig({
      argv: [],
      env: { FAIR_STATE_GRPC_LISTEN_ADDRESS: "127.0.0.1:50051", FAIR_STATE_DECAY_RATE: "0" },
    });
    expect(config.grpcListenAddress).toBe("127.0.0.1:50051");
    expect(config.decayRate).toBe(0);
    expect(origins.grpcListenAddress).toBe("env");
  });

  test("flags, in both --key value and --key=value forms", () => {
    expect(flagName("seedEvictionTtl")).toBe("--seed-eviction-ttl");
    const { config, origins } = loadConfig({
      argv: ["--seed-eviction-ttl", "1h", "--log-level=debug", "--compression", "gzip"],
      env: {},
    });
    expect(config.seedEvictionTtl).toBe(3_600_000);
    expect(config.logLevel).toBe("debug");
    expect(config.compression).toBe("gzip");
    expect(origins.seedEvictionTtl).toBe("flag");
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

test("precedence is defaults < file < environment < flags", () => {
  const readFile = files({ "c.yaml": "decayRate: 0.1\nmaxRows: 16\nmaxCols: 1000\n" });
  const { config, origins } = loadConfig({
    argv: ["--config", "c.yaml", "--decay-rate", "0.3"],
    env: { FAIR_STATE_DECAY_RATE: "0.2", FAIR_STATE_MAX_ROWS: "32" },
    readFile,
  });
  expect(config).toMatchObject({
    decayRate: 0.3,
    maxRows: 32,
    maxCols: 1000,
    maxDeltasPerMessage: 100_000,
  });
  expect(origins).toMatchObject({
    decayRate: "flag",
    maxRows: "env",
    maxCols: "file",
    maxDeltasPerMessage: "default",
  });
});

describe("bad values stop start-up with one issue per bad field, naming its source", () => {
  test("one from each source, all reported together", () => {
    const issues = issuesOf(() =>
      loadConfig({
        argv: ["--config", "bad.yaml", "--decay-rate", "fast"],
        env: { FAIR_STATE_GRPC_LISTEN_ADDRESS: "localhost" },
        readFile: files({ "bad.yaml": "seedWindowDuration: 0\nmaxRows: -1\n" }),
      }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "file bad.yaml: seedWindowDuration",
      "file bad.yaml: maxRows",
      "env FAIR_STATE_GRPC_LISTEN_ADDRESS: grpcListenAddress",
      "flag --decay-rate: decayRate",
    ]);
    expect(issues[3]?.message).toBe("expected a number");
  });

  test("the error message has one line per issue", () => {
    const run = () =>
      loadConfig({ argv: ["--max-cols", "1.5", "--broadcast-interval", "10"], env: {} });
    expect(run).toThrow(ConfigError);
    const issues = issuesOf(run);
    expect(new ConfigError(issues).message.split("\n")).toEqual([
      'flag --broadcast-interval: broadcastInterval: expected a duration with a unit such as "250ms", "30s" or "5m", got "10"',
      "flag --max-cols: maxCols: must be an integer",
    ]);
  });

  test.each([
    ["a duration without a unit", { FAIR_STATE_SEED_WINDOW_DURATION: "300" }, "seedWindowDuration"],
    ["a negative duration", { FAIR_STATE_BROADCAST_INTERVAL: "-5s" }, "broadcastInterval"],
    ["a negative decay rate", { FAIR_STATE_DECAY_RATE: "-0.01" }, "decayRate"],
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
      loadConfig({ argv: ["--seed-eviction-ttl", "1m", "--max-clock-skew", "10m"], env: {} }),
    );
    expect(issues.map((i) => `${i.source}: ${i.key}`)).toEqual([
      "flag --seed-eviction-ttl: seedEvictionTtl",
      "flag --max-clock-skew: maxClockSkew",
    ]);
  });
});
