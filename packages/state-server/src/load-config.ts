import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import {
  type ConfigKey,
  configKeys,
  type DeprecatedConfigKey,
  deprecatedConfigKeys,
  envName,
  flagName,
  type StateServerConfig,
} from "./config-schema.js";

/** Where a configuration value came from, lowest precedence first. */
export type ConfigOrigin = "default" | "file" | "env" | "flag";

/** One bad value: which key, from which source, and what is wrong with it. */
export interface ConfigIssue {
  /**
   * The source, as an operator would look for it: `env FAIR_STATE_DECAY_RATE_PER_SECOND`,
   * `flag --decay-rate-per-second`, `file ./fair.yaml` (`file ./fair.yaml, key decayRate`
   * for a deprecated key name).
   */
  readonly source: string;
  /** The configuration key (its current name), or `config` for a problem with a source as a whole. */
  readonly key: string;
  readonly message: string;
}

/** Thrown by {@link loadConfig}; its message has one line per bad field. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.source}: ${i.key}: ${i.message}`).join("\n"));
  }
}

/** What the configuration is read from; all injectable for tests. */
export interface ConfigSources {
  /** Command-line arguments, without the node binary and script. */
  readonly argv: readonly string[];
  /** The process environment; `FAIR_STATE_*` names are read. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads the config file; default `fs.readFileSync(path, "utf8")`. */
  readonly readFile?: (path: string) => string;
}

/** The loaded configuration, where each value came from, and whether `--help` or `--version` was asked for. */
export interface LoadedConfig {
  readonly config: StateServerConfig;
  readonly origins: Readonly<Record<ConfigKey, ConfigOrigin>>;
  readonly help: boolean;
  readonly version: boolean;
  /**
   * One line for each use of a deprecated name (see `deprecatedConfigKeys`),
   * in the order read, e.g. `env FAIR_STATE_DECAY_RATE is deprecated: use
   * FAIR_STATE_DECAY_RATE_PER_SECOND (it will stop working in the next release)`.
   * Empty when every name is current. The app logs each as a warning.
   */
  readonly deprecations: readonly string[];
}

/** The environment variable that names a config file, like `--config`. */
export const CONFIG_FILE_ENV = "FAIR_STATE_CONFIG";

const keys = Object.keys(configKeys) as ConfigKey[];
const renamed = Object.entries(deprecatedConfigKeys) as [DeprecatedConfigKey, ConfigKey][];

/** One source's values by key, each with the source an operator would look for it in. */
type RawValues = Partial<Record<ConfigKey, { readonly value: unknown; readonly source: string }>>;

/**
 * Reads the configuration: defaults < file (`--config` or `FAIR_STATE_CONFIG`,
 * YAML or JSON) < environment (`FAIR_STATE_*`) < flags. Every source is
 * checked in full before anything is reported, so one run names every bad
 * field. A deprecated name (`deprecatedConfigKeys`) means its current key,
 * with the same precedence, and is reported in `deprecations`; a source that
 * gives a key under both names is an issue.
 *
 * @throws {ConfigError} with one issue per bad field, naming its source.
 */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const deprecations: string[] = [];
  const values: Partial<Record<ConfigKey, unknown>> = {};
  const origins = Object.fromEntries(keys.map((k) => [k, "default"])) as Record<
    ConfigKey,
    ConfigOrigin
  >;
  /** Where each value came from, as issues name it. */
  const sourceOf = Object.fromEntries(keys.map((k) => [k, "default"])) as Record<ConfigKey, string>;

  const take = (origin: ConfigOrigin, raw: RawValues) => {
    for (const key of keys) {
      const entry = raw[key];
      if (entry === undefined) continue;
      const schema: z.ZodType = configKeys[key].schema;
      const result = schema.safeParse(entry.value);
      if (result.success) {
        values[key] = result.data;
        origins[key] = origin;
        sourceOf[key] = entry.source;
      } else {
        for (const issue of result.error.issues) {
          issues.push({ source: entry.source, key, message: issue.message });
        }
      }
    }
  };
  const gathered = (byName: Readonly<Record<string, unknown>>, names: SourceNames) =>
    gather(byName, names, issues, deprecations);

  for (const key of keys) {
    const fallback = configKeys[key].default;
    if (fallback !== undefined) values[key] = configKeys[key].schema.parse(fallback);
  }

  const flags = readFlags(sources.argv, issues);
  const configPath = flags.configPath ?? sources.env[CONFIG_FILE_ENV];
  if (configPath !== undefined) {
    const file = readConfigFile(configPath, sources.readFile ?? defaultReadFile, issues);
    const label = `file ${configPath}`;
    take(
      "file",
      gathered(file, {
        spell: (key) => key,
        source: (name) => (Object.hasOwn(configKeys, name) ? label : `${label}, key ${name}`),
      }),
    );
  }
  const env = readEnv(sources.env, issues);
  take("env", gathered(env, { spell: envName, source: (name) => `env ${name}` }));
  take("flag", gathered(flags.values, { spell: flagName, source: (name) => `flag ${name}` }));

  if (issues.length > 0) throw new ConfigError(issues);
  values.maxClockSkewMs ??= Math.floor((values.windowMs as number) / 10);
  // A state directory turns snapshots on for the in-memory store, unless a path is given.
  if (values.stateDir !== undefined && values.store === "memory") {
    values.snapshotPath ??= join(values.stateDir as string, "state.snapshot");
  }
  const config = values as StateServerConfig;
  checkConsistency(config, sourceOf, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, origins, help: flags.help, version: flags.version, deprecations };
}

/** How one source names things. */
interface SourceNames {
  /** How it spells a key: the key itself in a file, `FAIR_STATE_*`, `--kebab-case`. */
  readonly spell: (key: ConfigKey | DeprecatedConfigKey) => string;
  /** The source of a value given under `name`, as issues name it: `env FAIR_STATE_MAX_ROWS`. */
  readonly source: (name: string) => string;
}

/**
 * One source's values by key, from its values by name. A deprecated name
 * stands for its current key and adds a deprecation; both names of one key
 * in the same source is an issue, and neither value is taken.
 */
function gather(
  byName: Readonly<Record<string, unknown>>,
  { spell, source }: SourceNames,
  issues: ConfigIssue[],
  deprecations: string[],
): RawValues {
  const raw: { -readonly [K in keyof RawValues]: RawValues[K] } = {};
  for (const key of keys) {
    const value = byName[spell(key)];
    if (value !== undefined) raw[key] = { value, source: source(spell(key)) };
  }
  for (const [old, key] of renamed) {
    const value = byName[spell(old)];
    if (value === undefined) continue;
    const oldSource = source(spell(old));
    deprecations.push(
      `${oldSource} is deprecated: use ${spell(key)} (it will stop working in the next release)`,
    );
    if (raw[key] === undefined) {
      raw[key] = { value, source: oldSource };
    } else {
      issues.push({
        source: oldSource,
        key,
        message: `both ${spell(old)} (deprecated) and ${spell(key)} are set: keep only ${spell(key)}`,
      });
      delete raw[key];
    }
  }
  return raw;
}

/** Rules between keys, reported against whichever source set the second key. */
function checkConsistency(
  config: StateServerConfig,
  sourceOf: Record<ConfigKey, string>,
  issues: ConfigIssue[],
) {
  if (config.seedEvictionTtlMs < config.windowMs) {
    issues.push({
      source: sourceOf.seedEvictionTtlMs,
      key: "seedEvictionTtlMs",
      message: `must be at least windowMs (${config.windowMs} ms), or the current window would be evicted`,
    });
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    const key = config.tlsCertFile === undefined ? "tlsKeyFile" : "tlsCertFile";
    issues.push({
      source: sourceOf[key],
      key,
      message: "TLS needs both tlsCertFile and tlsKeyFile",
    });
  }
  if (config.tlsClientCaFile !== undefined && config.tlsCertFile === undefined) {
    issues.push({
      source: sourceOf.tlsClientCaFile,
      key: "tlsClientCaFile",
      message: "mTLS needs TLS: set tlsCertFile and tlsKeyFile too",
    });
  }
  if (config.snapshotPath !== undefined && config.store === "redis") {
    issues.push({
      source: sourceOf.snapshotPath,
      key: "snapshotPath",
      message:
        "snapshots are for the in-memory store; Redis keeps its own data (unset one of them)",
    });
  }
  if (config.maxClockSkewMs >= config.windowMs) {
    issues.push({
      source: sourceOf.maxClockSkewMs,
      key: "maxClockSkewMs",
      message: `must be less than windowMs (${config.windowMs} ms)`,
    });
  }
}

/** Every flag a key can be given by: its own and, for one release, its deprecated name. */
const flagNames = [...keys, ...renamed.map(([old]) => old)].map((key) => flagName(key).slice(2));

function readFlags(argv: readonly string[], issues: ConfigIssue[]) {
  const options = Object.fromEntries(flagNames.map((name) => [name, { type: "string" as const }]));
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        ...options,
        config: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
    const byFlag: Record<string, unknown> = {};
    for (const name of flagNames) {
      const value = (values as Record<string, unknown>)[name];
      if (value !== undefined) byFlag[`--${name}`] = value;
    }
    return {
      values: byFlag,
      configPath: values.config,
      help: values.help === true,
      version: values.version === true,
    };
  } catch (error) {
    // parseArgs explains over several lines; keep the one-line-per-issue promise.
    const message = (error instanceof Error ? error.message : String(error)).replace(
      /\s*\n\s*/g,
      " ",
    );
    issues.push({ source: "flags", key: "config", message: `${message} (see --help)` });
    return { values: {}, configPath: undefined, help: false, version: false };
  }
}

function readEnv(env: ConfigSources["env"], issues: ConfigIssue[]): Record<string, unknown> {
  const known = new Set([...keys, ...renamed.map(([old]) => old)].map((key) => envName(key)));
  const raw: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("FAIR_STATE_") || name === CONFIG_FILE_ENV || value === undefined)
      continue;
    if (known.has(name)) {
      raw[name] = value;
    } else {
      issues.push({
        source: `env ${name}`,
        key: "config",
        message: "unknown setting (see --help)",
      });
    }
  }
  return raw;
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
  issues: ConfigIssue[],
): Record<string, unknown> {
  const source = `file ${path}`;
  let parsed: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    parsed = parseYaml(readFile(path));
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    issues.push({ source, key: "config", message: `cannot read: ${message}` });
    return {};
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    issues.push({ source, key: "config", message: "expected a mapping of keys to values" });
    return {};
  }
  const known = new Set<string>([...keys, ...renamed.map(([old]) => old)]);
  for (const name of Object.keys(parsed)) {
    if (!known.has(name)) issues.push({ source, key: name, message: "unknown key (see --help)" });
  }
  return parsed as Record<string, unknown>;
}

function defaultReadFile(path: string): string {
  return readFileSync(path, "utf8");
}

/** The `--help` text: every option with its flag, environment name and default. */
export function configHelp(): string {
  const lines = [
    "Usage: state-server [--config FILE] [--<key> VALUE]...",
    "",
    "Runs the FAIR State Service. Settings come from, lowest precedence first: defaults,",
    `the config file (--config or ${CONFIG_FILE_ENV}; YAML or JSON), the environment, flags.`,
    'Durations (the …Ms keys) are milliseconds: "250", or with a unit: "250ms", "30s", "5m", "1h30m".',
    "",
    "Options:",
  ];
  for (const key of keys) {
    const { default: fallback, help } = configKeys[key];
    lines.push(
      `  ${flagName(key)} <value>`,
      `      ${help}`,
      `      env ${envName(key)}; file key ${key}; default ${fallback === undefined ? "(derived)" : JSON.stringify(fallback)}`,
    );
  }
  lines.push(
    "  --config <file>",
    `      YAML or JSON file of the keys above; env ${CONFIG_FILE_ENV}`,
    "  -h, --help",
    "      Print this help and exit.",
    "  --version",
    "      Print the server's version and exit.",
    "",
    "Renamed settings: until the next release the old names still work, as file key, env",
    "(FAIR_STATE_<OLD>) and flag (--old-name), each use logging a deprecation warning:",
    ...renamed.map(([old, key]) => `  ${old} → ${key}`),
  );
  return lines.join("\n");
}
