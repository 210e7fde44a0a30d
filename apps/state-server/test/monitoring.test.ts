// k8s/monitoring/: the alerts and the Grafana dashboard, checked offline as
// far as they can be. kustomize itself renders them (`kubectl kustomize`),
// Prometheus's own checker parses the rules (`promtool check rules`), and
// every metric their PromQL names must be one a real server process exports,
// read from its /metrics: on the in-memory store, and on Redis for the Redis
// store's own metrics. A misspelt metric would otherwise make an alert that
// never fires and a panel that stays empty, with no error anywhere.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deleteKeys, uniqueKeyPrefix } from "@fair/testing/redis";
import { afterAll, afterEach, describe, expect, inject, test } from "vitest";
import { parseAllDocuments, parse as parseYaml, stringify } from "yaml";
import { type ServerProcess, startServerProcess } from "./server-process.js";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const redisUrl = inject("redisUrl");

/** The documents `kubectl kustomize <dir>` renders: kustomize itself, no imitation of it. */
function render(dir: string): Record<string, unknown>[] {
  const text = execFileSync("kubectl", ["kustomize", join(repo, dir)], {
    encoding: "utf8",
    timeout: 60_000,
  });
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

interface Metadata {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface PrometheusRule {
  metadata: Metadata;
  spec: { groups: { name: string; rules: Rule[] }[] };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { type: string; uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

const docs = render("k8s/monitoring");
const ruleDoc = docs.find((d) => d["kind"] === "PrometheusRule") as PrometheusRule | undefined;
const configMapDoc = docs.find((d) => d["kind"] === "ConfigMap") as
  | { metadata: Metadata; data: Record<string, string> }
  | undefined;
if (!ruleDoc || !configMapDoc)
  throw new Error("k8s/monitoring renders no PrometheusRule or no ConfigMap");
const rules = ruleDoc.spec.groups.flatMap((group) => group.rules);
const dashboardText = configMapDoc.data["fair-state-server.json"] ?? "";
const dashboard = JSON.parse(dashboardText) as Dashboard;
/** Every panel, rows' collapsed panels included. */
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);

/**
 * PromQL words that look like identifiers but name no metric. Functions and
 * aggregations need no list: they are the identifiers followed by `(`.
 */
const promqlKeywords = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "atan2",
  "inf",
  "nan",
]);

/**
 * The metric names one PromQL expression reads, by a deliberately simple
 * tokenizer rather than a PromQL parser: blank out what cannot be a metric
 * name (strings, label matchers `{...}`, ranges `[...]`, the label lists of
 * by/without/on/ignoring/group_left/group_right, Grafana variables `$x`,
 * numbers and durations), then take every identifier (`[a-zA-Z_:][a-zA-Z0-9_:]*`)
 * that is not a keyword and not followed by `(` (a function or an
 * aggregation). Enough for the expressions these files use.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ")
    .replace(/\$\{?\w+\}?/g, " ")
    .replace(/\b\d[\w.]*/g, " ");
  const names = new Set<string>();
  for (const [, name = "", call] of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (call === undefined && !promqlKeywords.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

/** Every metric name the rules and the dashboard read, with where each is read. */
function referencedNames(): Map<string, string[]> {
  const uses: [string, string][] = [
    ...rules.map((rule): [string, string] => [`alert ${rule.alert ?? rule.record}`, rule.expr]),
    ...panels.flatMap((panel) =>
      (panel.targets ?? []).map((target): [string, string] => [
        `panel "${panel.title}"`,
        target.expr,
      ]),
    ),
  ];
  // A query variable's label_values(metric, label) reads a metric too.
  for (const variable of dashboard.templating.list) {
    const query = JSON.stringify(variable.query ?? "");
    const metric = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/.exec(query)?.[1];
    if (metric) uses.push([`variable $${variable.name}`, metric]);
  }
  const names = new Map<string, string[]>();
  for (const [where, expr] of uses) {
    for (const name of metricNames(expr)) names.set(name, [...(names.get(name) ?? []), where]);
  }
  return names;
}

/** Series Prometheus makes itself for every target: never on /metrics. */
const prometheusSeries = new Set(["up"]);

/**
 * The series names a /metrics text can have, from its `# TYPE name type`
 * lines (present even before a metric has a sample): a histogram is read as
 * name_bucket, name_sum and name_count, never by its bare name.
 */
function exportedSeries(text: string): Set<string> {
  const series = new Set<string>();
  for (const [, name = "", type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === "histogram")
      for (const part of ["_bucket", "_sum", "_count"]) series.add(name + part);
    else if (type === "summary") for (const part of ["", "_sum", "_count"]) series.add(name + part);
    else series.add(name);
  }
  return series;
}

/** Names in `names` (with where they are used) that `exported` does not have. */
function missing(names: Map<string, string[]>, exported: Set<string>): Record<string, string[]> {
  return Object.fromEntries(
    [...names].filter(([name]) => !exported.has(name) && !prometheusSeries.has(name)),
  );
}

const isRedisMetric = (name: string) => /^fair_state_(redis|relay)_/.test(name);

async function scrape(server: ServerProcess): Promise<string> {
  const response = await fetch(`http://${server.metricsAddress}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

describe("k8s/monitoring/: alerts and dashboard", () => {
  test("kustomize renders the PrometheusRule and the dashboard's ConfigMap, labelled like the ServiceMonitor and for the Grafana sidecar", () => {
    expect(docs.map((d) => d["kind"]).sort()).toEqual(["ConfigMap", "PrometheusRule"]);
    const [monitor] = parseAllDocuments(
      readFileSync(join(repo, "k8s/servicemonitor.yaml"), "utf8"),
    ).map((d) => d.toJS()) as [{ metadata: Metadata }];
    expect(ruleDoc.metadata.labels).toMatchObject(monitor.metadata.labels ?? {});
    // No namespace: they go where they are applied, beside the server.
    expect(ruleDoc.metadata.namespace).toBeUndefined();
    expect(configMapDoc.metadata.namespace).toBeUndefined();
    expect(configMapDoc.metadata.labels?.["grafana_dashboard"]).toBe("1");
    // The ConfigMap carries the file as it is, and it is a dashboard on a templated data source.
    expect(dashboard).toEqual(
      JSON.parse(readFileSync(join(repo, "k8s/monitoring/grafana-dashboard.json"), "utf8")),
    );
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list.find((v) => v.type === "datasource")?.name).toBe("datasource");
    const queried = panels.filter((panel) => panel.type !== "row");
    expect(queried.length).toBeGreaterThan(10);
    for (const panel of queried) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not JavaScript's
      expect(panel.datasource, panel.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });

  test("every alert has a severity, a summary, a description and a duration", () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.alert, rule.expr).toMatch(/^FairState[A-Za-z]+$/);
      expect(["warning", "critical"], rule.alert).toContain(rule.labels?.["severity"]);
      expect(rule.annotations?.["summary"], rule.alert).toBeTruthy();
      expect(rule.annotations?.["description"], rule.alert).toBeTruthy();
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
    }
  });

  describe("promtool check rules", () => {
    const scratch = mkdtempSync(join(tmpdir(), "fair-monitoring-"));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    test("accepts the PrometheusRule's groups as a Prometheus rules file", () => {
      // The Prometheus Operator hands Prometheus the spec as it is: a rules file.
      const file = join(scratch, "fair-state-server.rules.yaml");
      writeFileSync(file, stringify(ruleDoc.spec));
      expect(parseYaml(readFileSync(file, "utf8"))).toEqual(ruleDoc.spec);
      const result = spawnSync("promtool", ["check", "rules", file], {
        encoding: "utf8",
        timeout: 30_000,
      });
      if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
        throw new Error(
          "promtool is not installed, and these rules must be checked by it: " +
            "`sudo apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu; .ci/run does it), " +
            "or put promtool from a Prometheus release (prometheus.io/download) on PATH",
        );
      }
      expect(result.error).toBeUndefined();
      expect(`${result.stdout}${result.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(result.status).toBe(0);
    });
  });

  test("the tokenizer finds metric names, and only metric names", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (namespace, le) (rate(a_seconds_bucket{operation="apply", ns=~"$namespace"}[$__rate_interval]))) > 0.1',
      ),
    ).toEqual(["a_seconds_bucket"]);
    expect(
      metricNames(
        'max without (pod) (b == 0) and on (job) c:recorded offset 5m or absent(up{job="x"} == 1) * 1e3',
      ),
    ).toEqual(["b", "c:recorded", "up"]);
  });

  describe("every metric they read is one the server exports", () => {
    let server: ServerProcess | undefined;
    let keyPrefix: string | undefined;
    afterEach(async () => {
      await server?.stop();
      server = undefined;
      if (keyPrefix) await deleteKeys(redisUrl, keyPrefix);
      keyPrefix = undefined;
    });

    test("on the in-memory store (all but the Redis store's own metrics)", async () => {
      server = await startServerProcess([]);
      const exported = exportedSeries(await scrape(server));
      const names = referencedNames();
      // The check can only fail if the names it checks are really there.
      expect(names.has("fair_state_deltas_applied_total")).toBe(true);
      expect(exported.has("fair_state_aggregation_latency_seconds_bucket")).toBe(true);
      const memoryNames = new Map([...names].filter(([name]) => !isRedisMetric(name)));
      expect(missing(memoryNames, exported)).toEqual({});
    });

    describe.skipIf(redisUrl === "")("on Redis", () => {
      test("on the Redis store (every name, the fair_state_redis_* and fair_state_relay_* ones too)", async () => {
        keyPrefix = uniqueKeyPrefix("monitoring");
        server = await startServerProcess([
          "--store=redis",
          `--redis-url=${redisUrl}`,
          `--redis-key-prefix=${keyPrefix}`,
        ]);
        const exported = exportedSeries(await scrape(server));
        const names = referencedNames();
        expect([...names.keys()].filter(isRedisMetric).length).toBeGreaterThan(0);
        expect(missing(names, exported)).toEqual({});
      });
    });
  });
});
