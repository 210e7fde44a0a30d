// The server's source (no build needed) in a process of its own, on
// loopback ports chosen by the system, for tests that must watch what only a
// separate process shows: its resident memory, and whether it stays alive.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const main = join(repo, "apps/state-server/src/main.ts");

/** A running server process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** `127.0.0.1:port` of the gRPC listener. */
  readonly grpcAddress: string;
  /** `127.0.0.1:port` of the metrics listener. */
  readonly metricsAddress: string;
  /** Every JSON log line so far. */
  readonly logs: readonly Record<string, unknown>[];
  /** Resident memory now, from /proc. */
  rssBytes(): number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** One metric's samples, `name{labels} value`, from `/metrics`. */
  metric(name: string): Promise<Map<string, number>>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts the server with `flags` (loopback addresses on port 0 are added)
 * and resolves once it logs that it started.
 */
export async function startServerProcess(flags: readonly string[]): Promise<ServerProcess> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("FAIR_STATE_")),
  );
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=development",
      main,
      "--grpc-listen-address=127.0.0.1:0",
      "--metrics-listen-address=127.0.0.1:0",
      ...flags,
    ],
    { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const logs: Record<string, unknown>[] = [];
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    if (!child.stdout) throw new Error("no stdout");
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry["msg"] === "fair-state-server started") resolve(entry);
    });
    void exited.then((code) =>
      reject(new Error(`server exited (${code}) before starting: ${stderr}`)),
    );
  });
  const line = await started;
  const metricsAddress = String(line["metricsAddress"]);
  return {
    child,
    grpcAddress: String(line["grpcAddress"]),
    metricsAddress,
    logs,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) * 1024;
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    async metric(name) {
      const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
      const samples = new Map<string, number>();
      for (const sample of text.split("\n")) {
        if (sample.startsWith(`${name}{`) || sample.startsWith(`${name} `)) {
          const space = sample.lastIndexOf(" ");
          samples.set(sample.slice(0, space), Number(sample.slice(space + 1)));
        }
      }
      return samples;
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
