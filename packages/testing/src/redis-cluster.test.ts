import { spawnSync } from "node:child_process";
import { Cluster, Redis } from "ioredis";
import { afterEach, describe, expect, test } from "vitest";
import {
  type PrivateCluster,
  type PrivateSentinel,
  startPrivateCluster,
  startPrivateSentinel,
} from "./redis-cluster.js";

// Without redis-server these tests skip, except under CI, where they run
// (and fail) so that they never skip silently there.
const haveRedisServer = spawnSync("redis-server", ["--version"]).status === 0;
const run = haveRedisServer || process.env["CI"] === "true";

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  const steps = cleanup.reverse();
  cleanup = [];
  for (const step of steps) await step();
});

function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

describe.skipIf(!run)("startPrivateCluster", () => {
  test("serves keys across slots, moves slots, and keeps replicated writes through a primary's failover", async () => {
    const cluster: PrivateCluster = await startPrivateCluster();
    cleanup.push(() => cluster.stop());
    expect(cluster.urls).toHaveLength(3);
    expect(cluster.url).toBe(cluster.urls.join(","));
    expect(cluster.nodes.map((node) => node.role).sort()).toEqual([
      "primary",
      "primary",
      "primary",
      "replica",
      "replica",
      "replica",
    ]);

    const client = new Cluster(cluster.urls.map(hostPort), {
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
    });
    client.on("error", () => {});
    cleanup.push(async () => {
      client.disconnect();
    });

    // {a}, {b} and {c} hash to slots 15495, 3300 and 7365: one per primary.
    const keys = ["fair-test:{a}", "fair-test:{b}", "fair-test:{c}"];
    const owners = await Promise.all(keys.map((key) => cluster.primaryOf(key)));
    expect(new Set(owners.map((owner) => owner.port)).size).toBe(3);
    for (const key of keys) await client.set(key, `value of ${key}`);
    // Keys spread over every slot, so a reshard moves some of them.
    const spread = Array.from({ length: 200 }, (_, index) => `fair-test:spread:${index}`);
    await Promise.all(spread.map((key) => client.set(key, key)));

    const [from, to] = cluster.nodes.filter((node) => node.role === "primary");
    if (!from || !to) throw new Error("expected primaries");
    const slotsOf = (port: number) =>
      cluster.nodes
        .find((node) => node.port === port)
        ?.slots.reduce((sum, [first, last]) => sum + last - first + 1, 0);
    const before = slotsOf(to.port) ?? 0;
    await cluster.reshard(from.port, to.port, 500);
    expect(slotsOf(to.port)).toBe(before + 500);
    expect(await Promise.all(spread.map((key) => client.get(key)))).toEqual(spread);

    // Every write so far has reached a replica before the primary dies.
    for (const node of client.nodes("master")) {
      expect(await node.call("WAIT", [1, 1000])).toBeGreaterThanOrEqual(1);
    }
    const killed = await cluster.killPrimaryOf("fair-test:{a}");
    expect(cluster.nodes.find((node) => node.port === killed.port)?.running).toBe(false);
    await cluster.waitForOk();
    const after = await cluster.roles();
    expect(after.filter((node) => node.running && node.role === "primary")).toHaveLength(3);
    expect((await cluster.primaryOf("fair-test:{a}")).port).not.toBe(killed.port);

    for (const key of keys) expect(await client.get(key)).toBe(`value of ${key}`);
    expect(await Promise.all(spread.map((key) => client.get(key)))).toEqual(spread);
  });
});

describe.skipIf(!run)("startPrivateSentinel", () => {
  test("fails the primary over to the replica, which keeps the replicated writes", async () => {
    const sentinel: PrivateSentinel = await startPrivateSentinel();
    cleanup.push(() => sentinel.stop());
    const sentinels = [hostPort(sentinel.sentinelUrl)];

    const writer = new Redis({ sentinels, name: sentinel.masterName });
    writer.on("error", () => {});
    await writer.set("fair-test:sentinel", "kept");
    expect(await writer.call("WAIT", [1, 1000])).toBe(1);
    writer.disconnect();

    const oldPort = await sentinel.primaryPort();
    await sentinel.killPrimary();
    const newPort = await sentinel.waitForFailover(oldPort);
    expect(newPort).not.toBe(oldPort);
    expect(await sentinel.primaryPort()).toBe(newPort);

    const reader = new Redis({ sentinels, name: sentinel.masterName });
    reader.on("error", () => {});
    cleanup.push(async () => {
      reader.disconnect();
    });
    expect(await reader.get("fair-test:sentinel")).toBe("kept");
    expect(await reader.info("server")).toContain(`tcp_port:${newPort}\r\n`);
    // The new primary takes writes.
    await reader.set("fair-test:sentinel", "written after the failover");
    expect(await reader.get("fair-test:sentinel")).toBe("written after the failover");
  });
});
