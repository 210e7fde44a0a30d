// The Redis nodes behind a run on the Redis store: what they spent (INFO cpu,
// INFO commandstats) around the measured window, and the run's keys deleted
// afterwards. One plain connection per node, never a Cluster client: each
// node is asked about itself.
import { Redis } from "ioredis";

export type RedisMode = "standalone" | "cluster" | "sentinel";

/** One node's counters at one moment. */
export interface RedisNodeSample {
  /** used_cpu_user + used_cpu_sys, seconds. */
  readonly cpuS: number;
  /** Every cmdstat_* calls and usec (commands a script runs are counted too, and in the script's usec). */
  readonly calls: number;
  readonly usec: number;
  /** cmdstat_eval, evalsha, eval_ro, evalsha_ro, fcall, fcall_ro: the scripts (defineCommand runs EVALSHA). */
  readonly scriptCalls: number;
  readonly scriptUsec: number;
}

export interface RedisNode {
  /** host:port */
  readonly address: string;
  readonly role: "primary" | "replica";
  readonly client: Redis;
}

export interface RedisNodes {
  readonly nodes: readonly RedisNode[];
  /** Every node's counters now, in the order of `nodes`. */
  sample(): Promise<RedisNodeSample[]>;
  /** Deletes every key that starts with `prefix` (SCAN + UNLINK on every primary); resolves with how many. */
  deleteKeys(prefix: string): Promise<number>;
  close(): void;
}

const scriptCommands = new Set(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]);

/**
 * Connects to every node of the deployment `urls` name: standalone, its one
 * node; cluster, every node CLUSTER NODES lists (primaries and replicas, both
 * spend CPU); sentinel, the primary and replicas the first Sentinel that
 * answers names for `sentinelName`.
 */
export async function openRedisNodes(
  urls: readonly string[],
  mode: RedisMode,
  sentinelName: string,
): Promise<RedisNodes> {
  const first = new URL(urls[0] ?? "redis://127.0.0.1:6379");
  // Credentials and TLS of the first URL, for every node found from it.
  const common = {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === "rediss:" ? { tls: {} } : {}),
    connectionName: "fair-state-bench",
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    lazyConnect: true,
  };
  const open = async (host: string, port: number, db = 0) => {
    const client = new Redis({ ...common, host, port, db });
    client.on("error", () => {});
    await client.connect();
    return client;
  };
  const nodes: RedisNode[] = [];
  try {
    if (mode === "standalone") {
      const db = Number(first.pathname.slice(1) || 0);
      const client = await open(first.hostname, Number(first.port || 6379), db);
      nodes.push({ address: `${first.hostname}:${first.port || 6379}`, role: "primary", client });
    } else if (mode === "cluster") {
      const seed = await firstAnswering(urls, (url) =>
        open(url.hostname, Number(url.port || 6379)),
      );
      const text = String(await seed.call("CLUSTER", "NODES"));
      seed.disconnect();
      for (const line of text.split("\n")) {
        const [, addr, flags] = line.trim().split(" ");
        if (!addr || !flags || /fail|noaddr|handshake/.test(flags)) continue;
        const hostPort = addr.split("@")[0] ?? "";
        const colon = hostPort.lastIndexOf(":");
        const host = hostPort.slice(0, colon) || first.hostname;
        const port = Number(hostPort.slice(colon + 1));
        const role = flags.split(",").includes("master") ? "primary" : "replica";
        nodes.push({ address: `${host}:${port}`, role, client: await open(host, port) });
      }
    } else {
      // Sentinels have no credentials of the data nodes' in their URLs' sense; ask without.
      const sentinel = await firstAnswering(urls, async (url) => {
        const client = new Redis({
          host: url.hostname,
          port: Number(url.port || 26379),
          connectionName: "fair-state-bench",
          lazyConnect: true,
          maxRetriesPerRequest: 1,
          connectTimeout: 5_000,
        });
        client.on("error", () => {});
        await client.connect();
        return client;
      });
      const [host, port] = (await sentinel.call(
        "SENTINEL",
        "get-master-addr-by-name",
        sentinelName,
      )) as [string, string];
      const replicas = (await sentinel.call("SENTINEL", "replicas", sentinelName)) as string[][];
      sentinel.disconnect();
      nodes.push({ address: `${host}:${port}`, role: "primary", client: await open(host, +port) });
      for (const fields of replicas) {
        const field = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
        if (/s_down|o_down|disconnected/.test(field("flags"))) continue;
        const replica = await open(field("ip"), Number(field("port")));
        nodes.push({
          address: `${field("ip")}:${field("port")}`,
          role: "replica",
          client: replica,
        });
      }
    }
  } catch (error) {
    for (const node of nodes) node.client.disconnect();
    throw error;
  }
  return {
    nodes,
    sample: () => Promise.all(nodes.map((node) => sampleNode(node.client))),
    deleteKeys: async (prefix) => {
      let deleted = 0;
      for (const node of nodes) {
        if (node.role !== "primary") continue;
        deleted += await deleteOnNode(node.client, prefix, mode === "cluster");
      }
      return deleted;
    },
    close: () => {
      for (const node of nodes) node.client.disconnect();
    },
  };
}

async function firstAnswering(
  urls: readonly string[],
  connect: (url: URL) => Promise<Redis>,
): Promise<Redis> {
  let last: unknown;
  for (const url of urls) {
    try {
      return await connect(new URL(url));
    } catch (error) {
      last = error;
    }
  }
  throw new Error(`no Redis node of ${urls.join(",")} answered: ${(last as Error)?.message}`);
}

async function sampleNode(client: Redis): Promise<RedisNodeSample> {
  const [cpu, stats] = (await Promise.all([client.info("cpu"), client.info("commandstats")])).map(
    String,
  ) as [string, string];
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(cpu)?.[1] ?? 0);
  let calls = 0;
  let usec = 0;
  let scriptCalls = 0;
  let scriptUsec = 0;
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    const n = Number(match[2]);
    const us = Number(match[3]);
    calls += n;
    usec += us;
    if (scriptCommands.has(match[1] ?? "")) {
      scriptCalls += n;
      scriptUsec += us;
    }
  }
  return {
    cpuS: field("used_cpu_user") + field("used_cpu_sys"),
    calls,
    usec,
    scriptCalls,
    scriptUsec,
  };
}

/** SCAN MATCH prefix* on one node, UNLINK what it finds: in batches, or key by key on a cluster node (keys of many slots). */
async function deleteOnNode(client: Redis, prefix: string, keyByKey: boolean): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = (await client.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)) as [
      string,
      string[],
    ];
    cursor = next;
    if (keys.length === 0) continue;
    if (keyByKey) {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.unlink(key);
      await pipeline.exec();
    } else {
      await client.unlink(...keys);
    }
    deleted += keys.length;
  } while (cursor !== "0");
  return deleted;
}
