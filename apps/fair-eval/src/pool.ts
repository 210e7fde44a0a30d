// Runs jobs in child processes (one per core by default), or in this process for --jobs 1.
// Processes rather than worker threads: Node 20 does not run tsx's TypeScript loader in
// worker threads, while a forked process takes it from execArgv like any other flag.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { executeJob, type Job, type RunRecord, WorkloadCache } from "./job.js";

/** Runs every job and returns the records in job order; `onDone` hears of each as it finishes. */
export async function runJobs(
  jobs: readonly Job[],
  parallel: number,
  onDone: (record: RunRecord, done: number) => void,
): Promise<RunRecord[]> {
  const records: RunRecord[] = new Array(jobs.length);
  let done = 0;
  if (parallel <= 1 || jobs.length <= 1) {
    const cache = new WorkloadCache();
    jobs.forEach((job, i) => {
      records[i] = executeJob(job, cache);
      onDone(records[i] as RunRecord, ++done);
    });
    return records;
  }
  let next = 0;
  const script = fileURLToPath(new URL("./worker.ts", import.meta.url));
  const workers = Array.from({ length: Math.min(parallel, jobs.length) }, () =>
    fork(script, [], { execArgv: process.execArgv, serialization: "advanced" }),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          let current = -1;
          const feed = () => {
            if (next >= jobs.length) {
              worker.disconnect();
              resolve();
              return;
            }
            current = next++;
            worker.send(jobs[current] as Job);
          };
          worker.on("message", (record: RunRecord) => {
            records[current] = record;
            onDone(record, ++done);
            feed();
          });
          worker.on("error", reject);
          worker.on("exit", (code) => {
            if (code !== 0 && code !== null) reject(new Error(`eval worker exited with ${code}`));
          });
          feed();
        }),
    ),
  );
  return records;
}
