import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import {
  type ConfigKey,
  configKeys,
  envName,
  flagName,
  type StateServerConfig,
} from "./config-schema.js";

/** Where a configuration value came from, lowest precedence first. */
export type ConfigOrigin = "default" | "file" | "env" | "flag";

/** One bad value: which key, from which source, and what is wrong with it. */
export interface ConfigIssue {
  /** The source, as an operator would look for it: `env FAIR_STATE_DECAY_RATE`, `flag --decay-rate`, `file ./fair.yaml`. */
  readonly source: string;
  /** The configuration key, or `config` for a problem with a source as a whole. */
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

/** The loaded configuration, where each value came from, and whether `--help` was asked for. */
export interface LoadedConfig {
  readonly config: StateServerConfig;
  readonly origins: Readonly<Record<ConfigKey, ConfigOrigin>>;
  readonly help: boolean;
}

/** The environment variable that names a config file, like `--config`. */
export const CONFIG_FILE_ENV = "FAIR_STATE_CONFIG";

const keys = Object.keys(configKeys) as ConfigKey[];

/**
 * Reads the configuration: defaults < file (`--config` or `FAIR_STATE_CONFIG`,
 * YAML or JSON) < environment (`FAIR_STATE_*`) < flags. Every source is
 * checked in full before anything is reported, so one run names every bad
 * field.
 *
 * @throws {ConfigError} with one issue per bad field, naming its source.
 */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const values: Partial<Record<ConfigKey, unknown>> = {};
  const origins = Object.fromEntries(keys.map((k) => [k, "default"])) as Record<
    ConfigKey,
    ConfigOrigin
  >;

  const take = (
    origin: ConfigOrigin,
    source: (key: ConfigKey) => string,
    raw: Partial<Record<ConfigKey, unknown>>,
  ) => {
    for (const key of keys) {
      if (raw[key] === undefined) continue;
      const schema: z.ZodType = configKeys[key].schema;
      const result = schema.safeParse(raw[key]);
      if (result.success) {
        values[key] = result.data;
        origins[key] = origin;
      } else {
        for (const issue of result.error.issues) {
          issues.push({ source: source(key), key, message: issue.message });
        }
      }
    }
  };

  for (const key of keys) {
    const fallback = configKeys[key].default;
    if (fallback !== undefined) values[key] = configKeys[key].schema.parse(fallback);
  }

  const flags = readFlags(sources.argv, issues);
  const configPath = flags.configPath ?? sources.env[CONFIG_FILE_ENV];
  if (configPath !== undefined) {
    const file = readConfigFile(configPath, sources.readFile ?? defaultReadFile, issues);
    take("file", () => `file ${configPath}`, file);
  }
  take("env", (key) => `env ${envName(key)}`, readEnv(sources.env, issues));
  take("flag", (key) => `flag ${flagName(key)}`, flags.values);

  if (issues.length > 0) throw new ConfigError(issues);
  values.maxClockSkew ??= Math.floor((values.seedWindowDuration as number) / 10);
  const config = values as StateServerConfig;
  checkConsistency(config, origins, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, origins, help: flags.help };
}

function sourceOf(key: ConfigKey, origins: Record<ConfigKey, ConfigOrigin>): string {
  const origin = origins[key];
  if (origin === "env") return `env ${envName(key)}`;
  if (origin === "flag") return `flag ${flagName(key)}`;
  return origin;
}

/** Rules between keys, reported against whichever source set the second key. */
function checkConsistency(
  config: StateServerConfig,
  origins: Record<ConfigKey, ConfigOrigin>,
  issues: ConfigIssue[],
) {
  if (config.seedEvictionTtl < config.seedWindowDuration) {
    issues.push({
      source: sourceOf("seedEvictionTtl", origins),
      key: "seedEvictionTtl",
      message: `must be at least seedWindowDuration (${config.seedWindowDuration} ms), or the current window would be evicted`,
    });
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    const key = config.tlsCertFile === undefined ? "tlsKeyFile" : "tlsCertFile";
    issues.push({
      source: sourceOf(key, origins),
      key,
      message: "TLS needs both tlsCertFile and tlsKeyFile",
    });
  }
  if (config.tlsClientCaFile !== undefined && config.tlsCertFile === undefined) {
    issues.push({
      source: sourceOf("tlsClientCaFile", origins),
      key: "tlsClientCaFile",
      message: "mTLS needs TLS: set tlsCertFile and tlsKeyFile too",
    });
  }
  if (config.snapshotPath !== undefined && config.store === "redis") {
    issues.push({
      source: sourceOf("snapshotPath", origins),
      key: "snapshotPath",
      message:
        "snapshots are for the in-memory store; Redis keeps its own data (unset one of them)",
    });
  }
  if (config.maxClockSkew >= config.seedWindowDuration) {
    issues.push({
      source: sourceOf("maxClockSkew", origins),
      key: "maxClockSkew",
      message: `must be less than seedWindowDuration (${config.seedWindowDuration} ms)`,
    });
  }
}

function readFlags(argv: readonly string[], issues: ConfigIssue[]) {
  const options = Object.fromEntries(
    keys.map((key) => [flagName(key).slice(2), { type: "string" as const }]),
  );
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { ...options, config: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    const byName: Record<string, string | boolean | undefined> = values;
    const byKey: Partial<Record<ConfigKey, unknown>> = {};
    for (const key of keys) byKey[key] = byName[flagName(key).slice(2)];
    return { values: byKey, configPath: values.config, help: values.help === true };
  } catch (error) {
    // parseArgs explains over several lines; keep the one-line-per-issue promise.
    const message = (error instanceof Error ? error.message : String(error)).replace(
      /\s*\n\s*/g,
      " ",
    );
    issues.push({ source: "flags", key: "config", message: `${message} (see --help)` });
    return { values: {}, configPath: undefined, help: false };
  }
}

function readEnv(env: ConfigSources["env"], issues: ConfigIssue[]) {
  const byName = new Map(keys.map((key) => [envName(key), key]));
  const raw: Partial<Record<ConfigKey, unknown>> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("FAIR_STATE_") || name === CONFIG_FILE_ENV || value === undefined)
      continue;
    const key = byName.get(name);
    if (key === undefined) {
      issues.push({
        source: `env ${name}`,
        key: "config",
        message: "unknown setting (see --help)",
      });
    } else {
      raw[key] = value;
    }
  }
  return raw;
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
  issues: ConfigIssue[],
): Partial<Record<ConfigKey, unknown>> {
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
  const known = new Set<string>(keys);
  for (const name of Object.keys(parsed)) {
    if (!known.has(name)) issues.push({ source, key: name, message: "unknown key (see --help)" });
  }
  return parsed as Partial<Record<ConfigKey, unknown>>;
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
    'Durations take a unit: "250ms", "30s", "5m", "1h30m".',
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
  );
  return lines.join("\n");
}
