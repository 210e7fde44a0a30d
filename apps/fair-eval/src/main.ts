// `pnpm eval`: the fairness evaluation of docs/evaluation.md. Part 1 reruns the Go harness (three
// scenarios, with and without FAIR, Go's RNG: its counts reproduce exactly); part 2 serves the
// same workloads from N instances with FAIR state centralized, independent, shared through the
// State Service's real aggregation store, or shared by the two broken protocols; part 3 injects
// State Service faults into shared runs and compares the recovery with the centralized tracker.
// Progress goes to stderr; tables (or --json lines) to stdout.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { judge } from "./acceptance.js";
import { summarize } from "./aggregate.js";
import { parseEvalArgs } from "./cli.js";
import { faultInstances, faultJobs, faultRows, faultScenario } from "./faults.js";
import type { Job } from "./job.js";
import { runJobs } from "./pool.js";
import {
  distributedTable,
  faultJsonLine,
  faultTable,
  jsonLine,
  singleTable,
  verdictTable,
} from "./report.js";
import { renderSvg } from "./svg.js";
import { runSweep } from "./sweep.js";

const options = parseEvalArgs(process.argv.slice(2));
const lambda = options.lambda ?? 0.01;
const rotationMs = options.rotationMs ?? null;
const jobs: Job[] = [];
const base = {
  routing: options.routing,
  lambda,
  rotationMs,
  delayMs: 0,
  batchMs: 0,
  trial: 0,
} as const;

if (options.parts.has("single")) {
  for (const scenario of options.singleScenarios) {
    for (const mode of ["nofair", "centralized"] as const) {
      jobs.push({ ...base, part: "single", scenario, mode, instances: 1, routing: "rr" });
    }
  }
}
if (options.parts.has("distributed")) {
  for (const scenario of options.distributedScenarios) {
    const add = (
      mode: Job["mode"],
      instances: number,
      delayMs = 0,
      batchMs = 0,
      storeFlushMs = 0,
    ) => {
      if (!options.modes.includes(mode)) return;
      for (let trial = 0; trial < options.trials; trial++) {
        jobs.push({
          ...base,
          part: "distributed",
          scenario,
          mode,
          instances,
          delayMs,
          batchMs,
          trial,
          ...(storeFlushMs === 0 ? {} : { storeFlushMs }),
        });
      }
    };
    // Without FAIR nothing depends on N or the RNG: one run is the reference.
    if (options.modes.includes("nofair")) {
      jobs.push({ ...base, part: "distributed", scenario, mode: "nofair", instances: 1 });
    }
    for (const n of options.instances) {
      add("centralized", n);
      add("independent", n);
      for (const { delayMs, batchMs } of options.sync) {
        add("shared", n, delayMs, batchMs);
        // The store replica coalescing before the store (redisFlushIntervalMs), beside each.
        if (options.storeFlushMs > 0) add("shared", n, delayMs, batchMs, options.storeFlushMs);
      }
    }
    for (const n of options.controlInstances) {
      for (const { delayMs, batchMs } of options.sync) {
        add("naive", n, delayMs, batchMs);
        add("nodecay", n, delayMs, batchMs);
      }
    }
  }
}

if (options.parts.has("faults")) jobs.push(...faultJobs(options.trials, lambda));

const started = performance.now();
const log = (line: string) => {
  if (!options.quiet) process.stderr.write(`${line}\n`);
};
log(`eval: ${jobs.length} runs on ${Math.min(options.jobs, jobs.length)} thread(s)`);
const records = await runJobs(jobs, options.jobs, (r, done) => {
  const fault = r.fault === undefined ? "" : ` ${r.fault}/${r.variant}`;
  const store = r.storeFlushMs === undefined ? "" : ` S=${r.storeFlushMs}`;
  const where =
    r.part === "single"
      ? "go-harness"
      : `N=${r.instances} d=${r.delayMs} B=${r.batchMs}${store} trial ${r.trial}${fault}`;
  log(
    `[${done}/${jobs.length}] ${r.scenario} ${r.mode} ${where}: Jain ${r.entitlementJain.toFixed(4)} (${(r.elapsedMs / 1000).toFixed(1)} s)`,
  );
});
log(`eval: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);

const faults = faultRows(records);
if (options.json) {
  for (const record of records) if (record.part !== "faults") console.log(jsonLine(record));
  for (const row of faults) console.log(faultJsonLine(row));
} else {
  const summaries = summarize(records);
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(`# FAIR evaluation (node ${process.version}, ${cpus().length} CPUs, ${cpu})\n`);
  if (options.parts.has("single")) {
    console.log("## Single instance: the Go harness (docs/evaluation.md §1), Go's RNG\n");
    console.log(`${singleTable(summaries)}\n`);
  }
  if (options.parts.has("distributed")) {
    const extra = [
      `routing ${options.routing}`,
      `λ ${lambda}`,
      rotationMs === null ? "no rotation" : `windows of ${rotationMs} ms`,
      `${options.trials} trial(s)`,
    ].join(", ");
    for (const scenario of options.distributedScenarios) {
      console.log(`## Distributed: ${scenario} (${extra})\n`);
      console.log(`${distributedTable(summaries, scenario)}\n`);
    }
    const verdicts = judge(summaries);
    if (verdicts.length > 0) {
      console.log("## docs/evaluation.md §2.7.3: bounded staleness against (a) at the same N\n");
      console.log(`${verdictTable(verdicts)}\n`);
    }
  }
  if (options.parts.has("faults")) {
    console.log(
      `## Faults: ${faultScenario}, shared (c), N = ${faultInstances}, d = 50 ms, B = 250 ms, against (a) (λ ${lambda}, ${options.trials} trial(s))\n`,
    );
    console.log(`${faultTable(faults)}\n`);
  }
}
if (options.svg !== undefined) {
  writeFileSync(options.svg, renderSvg(summarize(records)));
  log(`eval: wrote ${options.svg}`);
}
if (options.sweep) runSweep(options.quiet);
