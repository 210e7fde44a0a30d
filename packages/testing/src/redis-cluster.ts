// A Redis Cluster and a Redis Sentinel setup of the test's own: real
// redis-server processes on free ports of 127.0.0.1, in the foreground (the
// test owns them and may SIGKILL any of them), nothing saved to disk, all
// killed and their directory removed by stop().
//
// Waiting on these external processes polls (they send no events we could
// wait on), always a bounded number of times, and fails with what was still
// missing.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "./redis.js";

const host = "127.0.0.1";
const slotCount = 16_384;

/** A data node's arguments: loopback, nothing on disk, replicas synced at once. */
function dataArgs(port: number, dir: string): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    host,
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--repl-diskless-sync-delay",
    "0",
  ];
}

/** One node of a private cluster, as its own CLUSTER NODES line last said. */
export interface ClusterNodeState {
  readonly port: number;
  /** The node's cluster id ("" until it has been read). */
  readonly id: string;
  readonly role: "primary" | "replica";
  /** Whether its process is running (false once killed). */
  readonly running: boolean;
  /** The slot ranges it serves, inclusive: [[0, 5460]] (none for a replica). */
  readonly slots: readonly (readonly [number, number])[];
}

export interface PrivateCluster {
  /** The redis:// URLs of the primaries the cluster was created with. */
  readonly urls: readonly string[];
  /** The same, comma-joined: a seed list as FAIR_TEST_REDIS_CLUSTER_URL has it. */
  readonly url: string;
  /** Every node, as the last `roles()` (or kill) left it. */
  readonly nodes: readonly ClusterNodeState[];
  /** Re-reads every running node's role and slots (CLUSTER NODES) into `nodes`. */
  roles(): Promise<readonly ClusterNodeState[]>;
  /** The running primary serving `key`'s slot (CLUSTER KEYSLOT + CLUSTER NODES). */
  primaryOf(key: string): Promise<{ port: number }>;
  /** SIGKILLs the primary serving `key`'s slot and waits until its process has exited. */
  killPrimaryOf(key: string): Promise<{ port: number }>;
  /**
   * Resolves once every running node says cluster_state:ok, they all map every
   * slot to the same running primaries, and every running replica's link to
   * its primary is up. Fails after a bounded wait (about 20 s).
   */
  waitForOk(): Promise<void>;
  /** Moves `slots` slots (and their keys) from one primary to another (`redis-cli --cluster reshard`), then waits for ok. */
  reshard(fromPort: number, toPort: number, slots: number): Promise<void>;
  /** Kills every node and removes the cluster's directory. */
  stop(): Promise<void>;
}

export interface PrivateSentinel {
  /** The sentinel: `redis://127.0.0.1:<port>`. */
  readonly sentinelUrl: string;
  readonly sentinelPort: number;
  /** The name the sentinel monitors the primary under: "fair". */
  readonly masterName: string;
  /** The primary's port, as the sentinel names it (SENTINEL get-master-addr-by-name). */
  primaryPort(): Promise<number>;
  /**
   * SIGKILLs the current primary, waits until its process has exited, and
   * has the sentinel start the failover (SENTINEL FAILOVER) at once.
   */
  killPrimary(): Promise<void>;
  /** Resolves with the new primary's port once the sentinel names one other than `oldPort` that answers ROLE master. */
  waitForFailover(oldPort: number): Promise<number>;
  /** Kills the sentinel, the primary and the replica and removes their directory. */
  stop(): Promise<void>;
}

/** A redis-server child of the test, with the last lines it logged (for error messages). */
interface Server {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  readonly log: string[];
  running: boolean;
}

/** `count` distinct free ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < count * 20; attempt++) {
    ports.add(await freePort());
  }
  if (ports.size < count) throw new Error(`could not find ${count} distinct free ports`);
  return [...ports];
}

/**
 * Spawns `redis-server <args>` and resolves once a line of its output
 * matches `ready`; rejects if it exits first, cannot be spawned, or is not
 * ready within 10 s (and then kills it).
 */
async function spawnServer(port: number, args: string[], ready: RegExp): Promise<Server> {
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const exited = new Promise<unknown>((resolve) => {
    child.once("exit", resolve);
    child.once("error", resolve);
  });
  const server: Server = { port, child, exited, log, running: true };
  void exited.then(() => {
    server.running = false;
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new Error("redis-server is not on PATH (apt-get install redis-server)")
          : error,
      ),
    );
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const deadline = new AbortController();
  const isReady = new Promise<void>((resolve, reject) => {
    lines.on("line", (line) => {
      log.push(line);
      if (log.length > 20) log.shift();
      if (ready.test(line)) resolve();
    });
    void exited.then(() =>
      reject(
        new Error(`redis-server on port ${port} exited before it was ready:\n${log.join("\n")}`),
      ),
    );
  });
  // Unhandled otherwise when the process fails after it was ready.
  isReady.catch(() => {});
  spawnError.catch(() => {});
  child.stderr?.on("data", (data: Buffer) => {
    log.push(data.toString().trimEnd());
    if (log.length > 20) log.shift();
  });
  const tooLate = sleep(10_000, undefined, { signal: deadline.signal }).then(() => {
    throw new Error(`redis-server on port ${port} was not ready within 10 s:\n${log.join("\n")}`);
  });
  tooLate.catch(() => {}); // aborted once the server is ready (or failed)
  try {
    await Promise.race([isReady, spawnError, tooLate]);
  } catch (error) {
    await kill(server);
    throw error;
  } finally {
    deadline.abort();
  }
  return server;
}

/** SIGKILL (as abrupt as a crash), then waits for the process to exit. */
async function kill(server: Server): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null && server.child.pid) {
    server.child.kill("SIGKILL");
  }
  await server.exited;
  server.running = false;
}

/** Runs `fn` on a fresh admin connection to the node, bounded by timeouts, then closes it. */
async function withNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host,
    port,
    lazyConnect: true,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

async function command(port: number, name: string, ...args: (string | number)[]): Promise<unknown> {
  return withNode(port, (redis) => redis.call(name, args));
}

/**
 * Resolves once the primary on `port` streams its writes to `replicas`
 * replicas. A replica's link is "up" as soon as it has loaded the
 * primary's snapshot, but Redis 7.0 streams the writes that follow only
 * after the replica's next REPLCONF ACK, up to a second later: a primary
 * killed in between takes every write since the snapshot with it (a
 * failover test once lost all of them). So: once the primary lists the
 * replicas online, a write (FLUSHALL: this setup's servers hold nothing
 * yet) that WAIT sees them acknowledge, which they can only do from the
 * stream.
 */
async function replicated(port: number, replicas: number): Promise<void> {
  await poll(`the primary on ${port} streams to ${replicas} replica(s)`, 100, 100, () =>
    withNode(port, async (redis) => {
      const info = String(await redis.call("INFO", ["replication"]));
      const online = info.match(/^slave\d+:.*state=online/gm)?.length ?? 0;
      if (online < replicas) return `${online} replica(s) online`;
      await redis.call("FLUSHALL", []);
      const acknowledged = Number(await redis.call("WAIT", [replicas, 2_000]));
      return acknowledged >= replicas ? true : `${acknowledged} replica(s) acknowledged a write`;
    }),
  );
}

/**
 * Calls `check` up to `attempts` times, `intervalMs` apart, until it returns
 * true; otherwise it returns (or throws) why not yet, and the last reason ends
 * up in the error.
 */
async function poll(
  what: string,
  attempts: number,
  intervalMs: number,
  check: () => Promise<true | string>,
): Promise<void> {
  let reason = "not checked";
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(intervalMs);
    try {
      const result = await check();
      if (result === true) return;
      reason = result;
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
  }
  throw new Error(
    `${what}: still not the case after ${attempts} checks ${intervalMs} ms apart: ${reason}`,
  );
}

function runRedisCli(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("redis-cli", args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (!error) return resolve();
      const output = `${stdout}${stderr}`.trim().split("\n").slice(-15).join("\n");
      reject(new Error(`redis-cli ${args.join(" ")} failed (${error.message}):\n${output}`));
    });
  });
}

interface NodesLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly primaryId: string;
  readonly slots: readonly (readonly [number, number])[];
}

/** Parses CLUSTER NODES: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseNodes(text: string): NodesLine[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = "", address = "", flags = "", primaryId = "", , , , , ...slotFields] =
        line.split(" ");
      const hostPort = address.split("@")[0] ?? "";
      const slots: [number, number][] = [];
      for (const field of slotFields) {
        if (field.startsWith("[")) continue; // a slot being imported or migrated
        const [from, to = from] = field.split("-");
        slots.push([Number(from), Number(to)]);
      }
      return {
        id,
        port: Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)),
        flags: flags.split(","),
        primaryId,
        slots,
      };
    });
}

const failed = (line: NodesLine) => line.flags.includes("fail") || line.flags.includes("fail?");

/**
 * Starts a Redis Cluster of 3 primaries and 3 replicas (one each) on free
 * ports, waits until it is ok and every primary streams its writes to its
 * replica, and returns it. `nodeTimeoutMs`
 * (cluster-node-timeout, default 1000) bounds how soon a killed primary's
 * replica takes over. `stop()` it when done.
 */
export async function startPrivateCluster(
  options: { nodeTimeoutMs?: number } = {},
): Promise<PrivateCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1_000;
  const dir = await mkdtemp(join(tmpdir(), "fair-redis-cluster-"));
  const servers: Server[] = [];
  const states = new Map<number, ClusterNodeState>();

  const stop = async () => {
    await Promise.all(servers.map(kill));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // A node also listens on a cluster bus port (port + 10000 by default,
    // which may be taken or out of range): give it a free one of its own.
    const ports = await freePorts(12);
    const spawned = await Promise.allSettled(
      ports
        .slice(0, 6)
        .map((port, index) =>
          spawnServer(
            port,
            [
              ...dataArgs(port, dir),
              "--cluster-enabled",
              "yes",
              "--cluster-port",
              String(ports[index + 6]),
              "--cluster-config-file",
              join(dir, `nodes-${port}.conf`),
              "--cluster-node-timeout",
              String(nodeTimeoutMs),
            ],
            /Ready to accept connections/,
          ),
        ),
    );
    for (const result of spawned) if (result.status === "fulfilled") servers.push(result.value);
    for (const result of spawned) if (result.status === "rejected") throw result.reason;
    await runRedisCli(
      [
        "--cluster",
        "create",
        ...servers.map((server) => `${host}:${server.port}`),
        "--cluster-yes",
        "--cluster-replicas",
        "1",
      ],
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const running = () => servers.filter((server) => server.running);
  const nodes = () =>
    servers.map((server) => {
      const known = states.get(server.port);
      return {
        port: server.port,
        id: known?.id ?? "",
        role: known?.role ?? "primary",
        running: server.running,
        slots: known?.slots ?? [],
      } satisfies ClusterNodeState;
    });

  const roles = async () => {
    await Promise.all(
      running().map(async (server) => {
        const myself = parseNodes(String(await command(server.port, "CLUSTER", "NODES"))).find(
          (line) => line.flags.includes("myself"),
        );
        if (!myself) throw new Error(`node ${server.port}: CLUSTER NODES has no myself line`);
        states.set(server.port, {
          port: server.port,
          id: myself.id,
          role: myself.flags.includes("master") ? "primary" : "replica",
          running: true,
          slots: myself.slots,
        });
      }),
    );
    return nodes();
  };

  const primaryOf = async (key: string) => {
    const [anyNode] = running();
    if (!anyNode) throw new Error("no node of the cluster is running");
    const slot = Number(await command(anyNode.port, "CLUSTER", "KEYSLOT", key));
    const owner = (await roles()).find(
      (node) =>
        node.running &&
        node.role === "primary" &&
        node.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!owner) throw new Error(`no running primary serves slot ${slot} (key ${key})`);
    return { port: owner.port };
  };

  /** Why the cluster is not ok yet, or true. */
  const checkOk = async (): Promise<true | string> => {
    const up = running();
    if (up.length === 0) return "no node is running";
    const runningPorts = new Set(up.map((server) => server.port));
    let agreed: string | undefined;
    for (const server of up) {
      const { info, nodesText, replication } = await withNode(server.port, async (redis) => ({
        info: String(await redis.call("CLUSTER", ["INFO"])),
        nodesText: String(await redis.call("CLUSTER", ["NODES"])),
        replication: String(await redis.call("INFO", ["replication"])),
      }));
      if (!info.includes("cluster_state:ok")) return `node ${server.port} is not cluster_state:ok`;
      const view = parseNodes(nodesText);
      const myself = view.find((line) => line.flags.includes("myself"));
      if (myself?.flags.includes("slave") && !replication.includes("master_link_status:up")) {
        return `replica ${server.port}'s link to its primary is not up`;
      }
      const owners: string[] = [];
      let covered = 0;
      for (const line of view) {
        if (!line.flags.includes("master") || line.slots.length === 0) continue;
        if (failed(line) || !runningPorts.has(line.port)) {
          return `node ${server.port} still maps slots to ${line.port}, which is down`;
        }
        for (const [from, to] of line.slots) {
          covered += to - from + 1;
          owners.push(`${from}-${to}:${line.port}`);
        }
      }
      if (covered !== slotCount) return `node ${server.port} maps ${covered} of ${slotCount} slots`;
      const map = owners.sort().join(",");
      if (agreed === undefined) agreed = map;
      else if (map !== agreed) return `node ${server.port} does not agree on the slot map yet`;
    }
    return true;
  };

  const waitForOk = () => poll("the Redis Cluster is ok", 200, 100, checkOk);

  try {
    await waitForOk();
    const primaries = (await roles()).filter((node) => node.role === "primary");
    await Promise.all(primaries.map((node) => replicated(node.port, 1)));
  } catch (error) {
    await stop();
    throw error;
  }

  const urls = nodes()
    .filter((node) => node.role === "primary")
    .map((node) => `redis://${host}:${node.port}`);

  return {
    urls,
    url: urls.join(","),
    get nodes() {
      return nodes();
    },
    roles,
    primaryOf,
    async killPrimaryOf(key) {
      const { port } = await primaryOf(key);
      const server = servers.find((candidate) => candidate.port === port);
      if (server) await kill(server);
      return { port };
    },
    waitForOk,
    async reshard(fromPort, toPort, slots) {
      const current = await roles();
      const idOf = (port: number) => {
        const node = current.find((candidate) => candidate.port === port && candidate.running);
        if (node?.role !== "primary") throw new Error(`${port} is not a running primary`);
        return node.id;
      };
      await runRedisCli(
        [
          "--cluster",
          "reshard",
          `${host}:${fromPort}`,
          "--cluster-from",
          idOf(fromPort),
          "--cluster-to",
          idOf(toPort),
          "--cluster-slots",
          String(slots),
          "--cluster-yes",
        ],
        60_000,
      );
      await waitForOk();
      await roles();
    },
    stop,
  };
}

/**
 * Starts a primary, a replica of it and one sentinel monitoring it as
 * "fair" (quorum 1, failover-timeout 2000, down-after-milliseconds 60000 so
 * that only `killPrimary` fails it over), on free ports; resolves once the
 * sentinel names the primary and knows the replica, and the primary
 * streams its writes to the replica. `stop()` it when done.
 */
export async function startPrivateSentinel(): Promise<PrivateSentinel> {
  const masterName = "fair";
  const dir = await mkdtemp(join(tmpdir(), "fair-redis-sentinel-"));
  const [primaryPort = 0, replicaPort = 0, sentinelPort = 0] = await freePorts(3);
  const servers: Server[] = [];
  const stop = async () => {
    await Promise.all(servers.map(kill));
    await rm(dir, { recursive: true, force: true });
  };
  const askSentinel = async () => {
    const reply = await command(sentinelPort, "SENTINEL", "get-master-addr-by-name", masterName);
    const port = Array.isArray(reply) ? Number(reply[1]) : Number.NaN;
    if (!Number.isInteger(port)) throw new Error(`the sentinel names no primary for ${masterName}`);
    return port;
  };

  try {
    servers.push(await spawnServer(primaryPort, dataArgs(primaryPort, dir), /Ready to accept/));
    servers.push(
      await spawnServer(
        replicaPort,
        [...dataArgs(replicaPort, dir), "--replicaof", host, String(primaryPort)],
        /Ready to accept/,
      ),
    );
    // The replica first, so the sentinel's first INFO of the primary lists it
    // (it asks again only every 10 s).
    await replicated(primaryPort, 1);
    const config = join(dir, "sentinel.conf");
    await writeFile(
      config,
      [
        `port ${sentinelPort}`,
        `bind ${host}`,
        `dir ${dir}`,
        `sentinel monitor ${masterName} ${host} ${primaryPort} 1`,
        // Long, so that only killPrimary fails over: at 1000 ms, and once
        // at 3000, a CI run's loaded cores stalled the primary long enough
        // for the sentinel to fail over on its own, and the stores' writes
        // were lost to the old primary's resync. killPrimary asks for the
        // failover (SENTINEL FAILOVER) instead of waiting this long.
        `sentinel down-after-milliseconds ${masterName} 60000`,
        `sentinel failover-timeout ${masterName} 2000`,
        "",
      ].join("\n"),
    );
    servers.push(await spawnServer(sentinelPort, [config, "--sentinel"], /\+monitor master/));
    await poll("the sentinel names the primary and knows the replica", 100, 100, async () => {
      if ((await askSentinel()) !== primaryPort) return "the sentinel names another primary";
      const replicas = await command(sentinelPort, "SENTINEL", "replicas", masterName);
      const known = (Array.isArray(replicas) ? replicas : []).some((fields: unknown) => {
        if (!Array.isArray(fields)) return false;
        const field = (name: string) => fields[fields.indexOf(name) + 1];
        return Number(field("port")) === replicaPort && field("flags") === "slave";
      });
      return known ? true : "the sentinel does not list the replica yet";
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    sentinelUrl: `redis://${host}:${sentinelPort}`,
    sentinelPort,
    masterName,
    primaryPort: askSentinel,
    async killPrimary() {
      const port = await askSentinel();
      const server = servers.find((candidate) => candidate.port === port);
      if (!server)
        throw new Error(`the sentinel names ${port}, which is none of this setup's servers`);
      await kill(server);
      // What the sentinel would do once down-after-milliseconds had passed.
      await poll("the sentinel starts a failover", 100, 100, async () => {
        try {
          await command(sentinelPort, "SENTINEL", "FAILOVER", masterName);
          return true;
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          // One already under way is the one asked for.
          return message.includes("INPROG") ? true : message;
        }
      });
    },
    async waitForFailover(oldPort) {
      let newPort = oldPort;
      await poll(`the sentinel fails ${oldPort} over`, 150, 100, async () => {
        const port = await askSentinel();
        if (port === oldPort) return `the sentinel still names ${oldPort}`;
        const role = await command(port, "ROLE");
        if (!Array.isArray(role) || role[0] !== "master") return `${port} is not master yet`;
        newPort = port;
        return true;
      });
      return newPort;
    },
    stop,
  };
}

/**
 * Deletes every key under `prefix` on every primary of a cluster (`url`, a
 * comma-separated seed list): SCAN on each primary, UNLINK key by key (keys
 * of one batch live in different slots). A test leaves the shared cluster
 * as it found it.
 */
export async function deleteClusterKeys(url: string, prefix: string): Promise<number> {
  if (!prefix.startsWith("fair-test:")) throw new Error(`refusing to delete keys of ${prefix}`);
  const seed = new URL(url.split(",")[0] as string);
  const probe = new Redis({ host: seed.hostname, port: Number(seed.port), lazyConnect: true });
  probe.on("error", () => {});
  let deleted = 0;
  try {
    await probe.connect();
    const ports = parseNodes(String(await probe.call("CLUSTER", "NODES")))
      .filter((line) => line.flags.includes("master") && !failed(line))
      .map((line) => line.port);
    for (const port of ports) {
      const node = new Redis({ host: seed.hostname, port, lazyConnect: true });
      node.on("error", () => {});
      try {
        await node.connect();
        let cursor = "0";
        for (let round = 0; round < 10_000; round++) {
          const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
          for (const key of keys) deleted += await node.unlink(key);
          cursor = next;
          if (cursor === "0") break;
        }
      } finally {
        node.disconnect();
      }
    }
  } finally {
    probe.disconnect();
  }
  return deleted;
}
