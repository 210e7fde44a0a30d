import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The server the bench started: its addresses and a window on its process. */
export interface ServerProcess {
  readonly grpcAddress: string;
  readonly metricsAddress: string;
  readonly pid: number;
  /** CPU seconds (user + system) the process has used so far. */
  cpuSeconds(): number;
  /** Peak resident set size so far, in bytes. */
  peakRssBytes(): number;
  /** Resident set size now, in bytes. */
  rssBytes(): number;
  stop(): Promise<void>;
}

/** The built `apps/state-server` of this checkout: the server the bench starts unless told otherwise. */
export const defaultServerMain = fileURLToPath(
  new URL("../../state-server/dist/main.js", import.meta.url),
);

/**
 * Starts `serverMain` (by default `apps/state-server`'s built `dist/main.js`)
 * in its own process on loopback ports chosen by the system, and waits for
 * its start-up line.
 */
export async function startServerProcess(
  flags: readonly string[],
  serverMain: string = defaultServerMain,
): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      serverMain,
      "--grpc-listen-address=127.0.0.1:0",
      "--metrics-listen-address=127.0.0.1:0",
      ...flags,
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FAIR_STATE_LOG_LEVEL: "info" } },
  );
  const started = await firstLogLine(child, serverMain);
  const pid = child.pid ?? 0;
  // Started is not ready: on Redis the store first learns the state's epoch,
  // and a stream opened before that is ended (UNAVAILABLE).
  await untilReady(String(started["metricsAddress"]), child);
  return {
    grpcAddress: String(started["grpcAddress"]),
    metricsAddress: String(started["metricsAddress"]),
    pid,
    cpuSeconds: () => {
      // /proc/<pid>/stat fields 14 and 15: utime and stime, in clock ticks (100 per second on Linux).
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    peakRssBytes: () => statusKiB(pid, "VmHWM") * 1024,
    rssBytes: () => statusKiB(pid, "VmRSS") * 1024,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Polls `/readyz` until it answers 200; fails after about 30 s or when the process exits. */
async function untilReady(metricsAddress: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 1_500; attempt++) {
    if (child.exitCode !== null) throw new Error("the server exited before it was ready");
    const status = await fetch(`http://${metricsAddress}/readyz`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill("SIGTERM");
  throw new Error(`the server at ${metricsAddress} was not ready (/readyz) within 30 s`);
}

/** A `kB` field of /proc/<pid>/status. */
function statusKiB(pid: number, field: string): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return Number(match?.[1] ?? 0);
}

async function firstLogLine(
  child: ChildProcess,
  serverMain: string,
): Promise<Record<string, unknown>> {
  if (!child.stdout) throw new Error("the server has no stdout");
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record["msg"] === "fair-state-server started") {
      // Keep draining its log so the pipe never fills and stalls the server.
      lines.on("line", () => {});
      return record;
    }
  }
  throw new Error(`the server exited before it started (${serverMain}; run \`pnpm build\` first?)`);
}

/** Sums of the `fair_state_*` samples the bench reads, from a Prometheus scrape. */
export interface ServerCounters {
  readonly applied: number;
  readonly received: number;
  readonly dropped: number;
  readonly broadcast: number;
  readonly slowConsumerCloses: number;
}

export async function scrape(metricsAddress: string): Promise<ServerCounters> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const sum = (name: string) => {
    let total = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
        total += Number(line.split(" ").pop());
    }
    return total;
  };
  return {
    applied: sum("fair_state_deltas_applied_total"),
    received: sum("fair_state_deltas_received_total"),
    dropped: sum("fair_state_deltas_dropped_total"),
    broadcast: sum("fair_state_buckets_broadcast_total"),
    slowConsumerCloses: sum("fair_state_slow_consumer_disconnects_total"),
  };
}
