// One hostile client must never stall, starve or crash the server. Each test
// replays one attack a probe found, at a smaller but telling scale, against
// the server in a process of its own (so its resident memory is its own),
// on loopback, and asserts what everyone else sees meanwhile: the server
// stays alive, its memory stays within a stated bound, a healthy client in
// another namespace keeps receiving, and new clients are still served.
// Bounds are generous: two shared cores, a test process that does the
// attacking, and no fake time across a process boundary.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import {
  closeAll,
  currentSeed,
  fillFrame,
  fillSeed,
  frame,
  Prober,
  quantile,
  ResponseReader,
  rawSession,
  rawSync,
  stateRequestFrame,
  waitFor,
} from "./abuse-clients.js";
import { type ServerProcess, startServerProcess } from "./server-process.js";

const MiB = 1024 * 1024;
let server: ServerProcess | undefined;
const scratch = mkdtempSync(join(tmpdir(), "fair-abuse-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

afterEach(async () => {
  closeAll();
  await server?.stop();
  server = undefined;
});

/** A new client connects, asks for a seed and gets its reply: the server still takes newcomers. */
async function newClientIsServed(address: string): Promise<void> {
  const session = await rawSession(address);
  const { stream } = rawSync(session, "newcomer");
  const reader = new ResponseReader(stream);
  stream.write(stateRequestFrame(currentSeed()));
  await reader.until(() => reader.fullState().done, "a newcomer's full-state reply", 10_000);
  session.destroy();
}

describe("abuse: one client cannot hurt the others", { timeout: 120_000 }, () => {
  test("unread full-state replies of a big seed hold one part each, not the seed", async () => {
    server = await startServerProcess([]);
    const seed = currentSeed();
    await fillSeed(server.grpcAddress, "victim", seed, 300_000);
    const before = server.rssBytes();
    const prober = await Prober.start(server.grpcAddress);
    // Twelve streams on one connection, each asking for the whole seed and reading nothing.
    const session = await rawSession(server.grpcAddress, { initialWindowSize: 65_535 });
    const hoarders = Array.from({ length: 12 }, () => rawSync(session, "victim"));
    for (const { stream } of hoarders) {
      stream.write(stateRequestFrame(seed));
      stream.pause();
    }
    // Long enough for every reply to have been built whole, as it once was.
    await prober.probed(40);
    const latencies = await prober.stop();
    const grown = server.rssBytes() - before;
    // Built whole, each reply was ~30 MiB of objects and bytes (300k buckets): 12 of them ~360 MiB.
    expect(grown).toBeLessThan(64 * MiB);
    expect(server.alive()).toBe(true);
    expect(quantile(latencies, 0.99)).toBeLessThan(500);
    await newClientIsServed(server.grpcAddress);
  });

  test("a full state of a million buckets, and snapshots of them, do not freeze the other streams", async () => {
    server = await startServerProcess([
      `--snapshot-path=${join(scratch, "state.snapshot")}`,
      "--snapshot-interval-ms=1s",
    ]);
    const seed = currentSeed();
    await fillSeed(server.grpcAddress, "victim", seed, 1_000_000);
    const before = server.rssBytes();
    const prober = await Prober.start(server.grpcAddress, 20);
    // A reader that takes the whole seed, as fast as it can, while snapshots run every second.
    const session = await rawSession(server.grpcAddress);
    const { stream } = rawSync(session, "victim");
    const reader = new ResponseReader(stream);
    stream.write(stateRequestFrame(seed));
    await reader.until(() => reader.fullState().done, "the million-bucket reply", 60_000);
    const snapshots = async () =>
      (await server?.metric("fair_state_snapshot_writes_total"))?.get(
        'fair_state_snapshot_writes_total{result="ok"}',
      ) ?? 0;
    const taken = await snapshots();
    await waitFor(async () => (await snapshots()) >= taken + 2, "two more snapshots", 30_000);
    const latencies = await prober.stop();
    expect(reader.fullState().buckets).toBe(1_000_000);
    // Built in one piece, the reply froze every stream ~0.7 s and each snapshot ~3 s.
    expect(quantile(latencies, 0.99)).toBeLessThan(250);
    expect(Math.max(...latencies)).toBeLessThan(1_000);
    // Built whole, the reply alone was ~100 MiB; a snapshot of the seed another 20.
    expect(server.rssBytes() - before).toBeLessThan(64 * MiB);
    expect(server.alive()).toBe(true);
    await newClientIsServed(server.grpcAddress);
  });

  test("idle connections that never open a stream cannot lock new clients out", async () => {
    server = await startServerProcess(["--max-connections=40", "--connection-timeout-ms=2s"]);
    const before = server.rssBytes();
    const prober = await Prober.start(server.grpcAddress);
    // Sixty connections that send the preface, answer PINGs (Node does) and nothing else.
    const idle = await Promise.all(
      Array.from({ length: 60 }, () => rawSession(server?.grpcAddress ?? "")),
    );
    // The server is full of them, yet a newcomer is served (an idle one makes room).
    await newClientIsServed(server.grpcAddress);
    // And the idle ones are closed once connectionTimeoutMs has passed.
    await Promise.all(
      idle.map(
        (session) =>
          new Promise<void>((resolve) =>
            session.closed ? resolve() : session.once("close", resolve),
          ),
      ),
    );
    const closed = await server.metric("fair_state_connections_closed_total");
    const timedOut =
      closed.get('fair_state_connections_closed_total{reason="connection_timeout"}') ?? 0;
    const evicted = closed.get('fair_state_connections_closed_total{reason="evicted"}') ?? 0;
    expect(timedOut + evicted).toBeGreaterThanOrEqual(60);
    const latencies = await prober.stop();
    expect(quantile(latencies, 0.99)).toBeLessThan(500);
    expect(server.rssBytes() - before).toBeLessThan(32 * MiB);
    expect(server.alive()).toBe(true);
  });

  test("streams that claim big messages and dribble them are reset, holding no more than the budget", async () => {
    server = await startServerProcess([
      `--max-buffered-request-bytes=${16 * MiB}`,
      "--message-timeout-ms=2s",
    ]);
    const before = server.rssBytes();
    const prober = await Prober.start(server.grpcAddress);
    // Forty streams over four connections, each claiming a 4 MiB message and sending all but its last byte.
    const claimed = 4 * MiB;
    const sessions = await Promise.all(
      Array.from({ length: 4 }, () => rawSession(server?.grpcAddress ?? "")),
    );
    const dribblers = sessions.flatMap((session) =>
      Array.from({ length: 10 }, () => rawSync(session, "dribbler")),
    );
    const body = Buffer.alloc(claimed - 1);
    for (const { stream } of dribblers) {
      const prefix = frame(new Uint8Array(0));
      prefix.writeUInt32BE(claimed, 1);
      stream.write(prefix);
      stream.write(body);
    }
    await Promise.all(dribblers.map((d) => d.closed));
    const peak = server.rssBytes() - before;
    const latencies = await prober.stop();
    // Held forever before: 40 × 4 MiB. Now at most the 16 MiB budget, plus what is in flight.
    expect(peak).toBeLessThan(96 * MiB);
    for (const { status } of dribblers) expect(status()).not.toBe("0");
    expect(quantile(latencies, 0.99)).toBeLessThan(500);
    expect(server.alive()).toBe(true);
    await newClientIsServed(server.grpcAddress);
  });

  test("namespaces are bounded by maxNamespaces; past it an update is refused, naming the key", async () => {
    server = await startServerProcess(["--max-namespaces=50"]);
    const before = server.rssBytes();
    const prober = await Prober.start(server.grpcAddress); // its namespace is one of the 50
    const seed = currentSeed();
    const sessions = await Promise.all(
      Array.from({ length: 4 }, () => rawSession(server?.grpcAddress ?? "")),
    );
    // Two hundred namespaces, one bucket each.
    const writers = Array.from({ length: 200 }, (_, i) => {
      const session = sessions[i % sessions.length];
      if (!session) throw new Error("no session");
      const writer = rawSync(session, `ns-${i}`);
      const reader = new ResponseReader(writer.stream);
      writer.stream.write(fillFrame(seed, 0, 1, 1));
      return { ...writer, reader };
    });
    // Each is either applied (its broadcast comes back) or refused (its stream ends).
    await waitFor(
      () => writers.every((w) => w.status() !== undefined || w.reader.responses.length > 0),
      "every writer's answer",
    );
    const refusals = await server.metric("fair_state_store_limit_refusals_total");
    expect(refusals.get('fair_state_store_limit_refusals_total{limit="max_namespaces"}')).toBe(151);
    // The prober's namespace took one place: 49 writers are applied, 151 refused.
    const refused = writers.filter(({ status }) => status() === "8"); // RESOURCE_EXHAUSTED
    expect(refused).toHaveLength(151);
    for (const writer of refused) expect(writer.message()).toContain("maxNamespaces");
    const latencies = await prober.stop();
    expect(quantile(latencies, 0.99)).toBeLessThan(500);
    expect(server.rssBytes() - before).toBeLessThan(32 * MiB);
    expect(server.alive()).toBe(true);
    await newClientIsServed(server.grpcAddress);
  });
});
