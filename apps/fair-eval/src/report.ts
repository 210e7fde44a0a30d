// The readable output of `pnpm eval`: Markdown tables (they read well in a terminal and paste
// into a README), and the JSON lines of --json.
import type { Verdict } from "./acceptance.js";
import { mean, type Summary } from "./aggregate.js";
import { type FaultRow, faultKinds, faultLabel, faultVariants } from "./faults.js";
import type { RunRecord } from "./job.js";

/** One JSON object per run, without the thread-local timing (and a fault run's series). */
export function jsonLine(record: RunRecord): string {
  const { part, scenario, mode, instances, routing, delayMs, batchMs, trial, lambda, rotationMs } =
    record;
  const {
    elapsedMs: _elapsed,
    badSeries: _series,
    recoveryMs: _recovery,
    storeFlushMs = 0,
    ...metrics
  } = record;
  // The run's identity first, then what it measured.
  return JSON.stringify({
    ...{ part, scenario, mode, instances, routing, delayMs, batchMs, storeFlushMs },
    ...{ trial, lambda, rotationMs },
    ...metrics,
  });
}

/** The single-instance table: the Go harness's columns. */
export function singleTable(summaries: readonly Summary[]): string {
  const rows = summaries
    .filter((s) => s.first.part === "single")
    .map((s) => [
      s.first.scenario,
      s.first.mode === "nofair" ? "no FAIR" : "FAIR",
      f(s.entitlementJain, 4),
      f(s.rawJain, 4),
      pct(s.utilization),
      String(s.first.successes),
      String(s.first.failures),
      String(s.first.throttled),
      f(s.first.meanRatio, 3),
      f(s.first.worstRatio, 3),
    ]);
  return table(
    [
      "scenario",
      "mode",
      "entitlement Jain",
      "raw Jain",
      "utilization",
      "successes",
      "failures",
      "throttled",
      "mean ratio",
      "worst ratio",
    ],
    rows,
  );
}

/** The distributed table of one scenario: one row per configuration, means over trials. */
export function distributedTable(summaries: readonly Summary[], scenario: string): string {
  const rows = summaries
    .filter((s) => s.first.part === "distributed" && s.first.scenario === scenario)
    .map((s) => {
      const r = s.first;
      const synced = r.mode === "shared" || r.mode === "naive" || r.mode === "nodecay";
      return [
        label(r),
        r.mode === "nofair" ? "any" : String(r.instances),
        synced ? String(r.delayMs) : "–",
        synced ? String(r.batchMs) : "–",
        `${f(s.entitlementJain, 4)} ± ${f(s.entitlementJainSd, 4)}`,
        pct(s.utilization),
        s.ttt50Ms === null ? "–" : f(s.ttt50Ms / 1000, 1),
        f(s.failuresBeforeTtt, 1),
        f(s.badShare, 2),
        f(s.goodThrottleRate, 3),
        f(s.postGoodThrottleRate, 3),
        s.divergence === null ? "–" : signed(s.divergence),
        s.deltasPerSec === 0 ? "–" : f(s.deltasPerSec, 0),
        String(s.trials),
      ];
    });
  return table(
    [
      "mode",
      "N",
      "d ms",
      "B ms",
      "entitlement Jain",
      "util",
      "TTT50 s",
      "fails before TTT",
      "badShare",
      "good throttle",
      "post good throttle",
      "divergence",
      "deltas/s",
      "trials",
    ],
    rows,
  );
}

/** The §2.7 criterion-3 verdicts, one row per synced configuration. */
export function verdictTable(verdicts: readonly Verdict[]): string {
  const mark = (ok: boolean) => (ok ? "ok" : "FAIL");
  const rows = verdicts.map((v) => {
    const r = v.summary.first;
    const ttt =
      v.summary.ttt50Ms === null || v.reference.ttt50Ms === null
        ? "–"
        : `${f(v.summary.ttt50Ms / v.reference.ttt50Ms, 2)}×`;
    return [
      r.scenario,
      label(r),
      String(r.instances),
      String(r.delayMs),
      String(r.batchMs),
      `${signed(v.summary.divergence ?? Number.NaN)} ${mark(v.divergenceOk)}`,
      `${signed(v.summary.entitlementJain - v.reference.entitlementJain)} ${mark(v.jainOk)}`,
      `${ttt} ${mark(v.tttOk)}`,
      `${signed((v.summary.utilization - v.reference.utilization) * 100)} pp ${mark(v.utilizationOk)}`,
      v.pass ? "pass" : "fail",
    ];
  });
  return table(
    [
      "scenario",
      "mode",
      "N",
      "d ms",
      "B ms",
      "divergence (≤ 0.005)",
      "Jain − (a) (± 0.02)",
      "TTT50 / (a) (≤ 1.2)",
      "util − (a) (± 0.5 pp)",
      "§2.7.3",
    ],
    rows,
  );
}

/** A fault run's JSON line: its identity, then what it measured against (a). */
export function faultJsonLine(row: FaultRow): string {
  return JSON.stringify(row);
}

/**
 * The fault table (docs/evaluation.md §2.9): per fault and variant, means over trials of the bad
 * flows' throttle rate in the 10 s after recovery, the centralized tracker's over the same 10 s,
 * and the time until the bad flows are back within 2 percentage points of it.
 */
export function faultTable(rows: readonly FaultRow[]): string {
  const lines: string[][] = [];
  for (const fault of faultKinds) {
    for (const variant of faultVariants) {
      const group = rows.filter((r) => r.fault === fault && r.variant === variant);
      const first = group[0];
      if (first === undefined) continue;
      const rate = mean(group.map((r) => r.badThrottleRate)) as number;
      const central = mean(group.map((r) => r.centralizedBadThrottleRate)) as number;
      const back = group.map((r) => r.backWithinMs);
      const reached = back.filter((ms): ms is number => ms !== null);
      const seconds = (ms: number) => f(ms / 1000, 1);
      let within: string;
      if (reached.length < back.length) {
        within = `never (${back.length - reached.length} of ${back.length})`;
      } else {
        const low = Math.min(...reached);
        const high = Math.max(...reached);
        within = `${seconds(mean(reached) as number)} s`;
        if (reached.length > 1) within += ` (${seconds(low)}–${seconds(high)})`;
      }
      lines.push([
        faultLabel(fault),
        variant,
        `+${seconds((mean(group.map((r) => r.recoveryMs)) as number) - first.faultAtMs)} s`,
        pct(rate),
        pct(central),
        `${f(rate / central, 2)}×`,
        within,
        String(group.length),
      ]);
    }
  }
  return table(
    [
      "fault",
      "variant",
      "links back",
      "bad throttle, 10 s after",
      "(a), same 10 s",
      "÷ (a)",
      "back within 2 pp of (a)",
      "trials",
    ],
    lines,
  );
}

function label(r: RunRecord): string {
  const letters: Record<string, string> = {
    centralized: " (a)",
    independent: " (b)",
    shared: " (c)",
  };
  const store = r.storeFlushMs === undefined ? "" : `, store flush ${r.storeFlushMs} ms`;
  return `${r.mode}${letters[r.mode] ?? ""}${store}`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function f(value: number | null, digits: number): string {
  return value === null || Number.isNaN(value) ? "–" : value.toFixed(digits);
}

function pct(value: number): string {
  return `${(100 * value).toFixed(2)}%`;
}

function signed(value: number): string {
  if (Number.isNaN(value)) return "–";
  const text = Math.abs(value) < 1e-4 && value !== 0 ? value.toExponential(1) : value.toFixed(4);
  return value >= 0 ? `+${text}` : text;
}
