// A child process of `pnpm eval`: runs the jobs it is sent, one at a time.
import { executeJob, type Job, WorkloadCache } from "./job.js";

const cache = new WorkloadCache();
process.on("message", (job: Job) => {
  process.send?.(executeJob(job, cache));
});
