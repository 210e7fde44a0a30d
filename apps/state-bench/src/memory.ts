#!/usr/bin/env node
// `pnpm bench:memory`: what the server's resident memory grows by per
// namespace, per seed and per bucket, measured on the server process
// (apps/state-server, built) from /proc, for DEPLOYMENT.md's sizing table.
// Each figure is the growth of RSS over a phase divided by what the phase
// added; the server runs with --expose-gc off, so the figures include what
// V8 keeps around, as production does.
import { once } from "node:events";
import { parseArgs } from "node:util";
import { GrpcFrameReader } from "@fair/state-proto";
import { openSync, requestFrame } from "./raw-sync.js";
import { type ServerProcess, startServerProcess } from "./server-process.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    namespaces: { type: "string", default: "5000" },
    buckets: { type: "string", default: "1000000" },
    json: { type: "boolean", default: false },
  },
  strict: true,
});
const namespaces = Number(values.namespaces);
const buckets = Number(values.buckets);
const windowMs = 300_000;
const seed = BigInt(Math.floor(Date.now() / windowMs) * windowMs);

function update(seedOf: bigint, first: number, count: number) {
  const ts = BigInt(Date.now());
  return requestFrame({
    request: {
      case: "deltaUpdate",
      value: {
        seed: seedOf,
        deltas: Array.from({ length: count }, (_, i) => ({
          rowId: BigInt(Math.floor((first + i) / 2 ** 20)),
          colId: BigInt((first + i) % 2 ** 20),
          deltaProb: 0.5,
          lastUpdateTimeMs: ts,
        })),
      },
    },
  });
}

/** Sends `frames` on one stream of `namespace`, then waits until the server has applied them. */
async function send(address: string, namespace: string, frames: Buffer[]): Promise<void> {
  const { session, stream } = openSync(address, { namespace });
  for (const bytes of frames) if (!stream.write(bytes)) await once(stream, "drain");
  const marker = seed + 3n * BigInt(windowMs);
  stream.write(requestFrame({ request: { case: "stateRequest", value: { seed: marker } } }));
  const reader = new GrpcFrameReader();
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => {
      // The reply to the marker is the last message this stream gets.
      if (reader.push(chunk).length > 0) resolve();
    });
    stream.once("close", () => reject(new Error(`the stream of ${namespace} closed early`)));
  });
  session.destroy();
}

async function settledRss(server: ServerProcess): Promise<number> {
  // Let the server's young generation settle: a few idle scrapes apart.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return server.rssBytes();
}

const server = await startServerProcess([
  `--max-namespaces=${namespaces + 10}`,
  "--broadcast-interval-ms=1h", // no broadcasts: the store's and the server's own memory
]);
try {
  const start = await settledRss(server);
  // Phase 1: namespaces, each one seed with one bucket.
  for (let i = 0; i < namespaces; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, namespaces - i) }, (_, k) =>
        send(server.grpcAddress, `ns-${i + k}`, [update(seed, 0, 1)]),
      ),
    );
  }
  const afterNamespaces = await settledRss(server);
  // Phase 2: the next window's seed in each of those namespaces, one bucket each.
  for (let i = 0; i < namespaces; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, namespaces - i) }, (_, k) =>
        send(server.grpcAddress, `ns-${i + k}`, [update(seed + BigInt(windowMs), 0, 1)]),
      ),
    );
  }
  const afterSeeds = await settledRss(server);
  // Phase 3: buckets, in one seed of one namespace.
  const frames: Buffer[] = [];
  for (let first = 0; first < buckets; first += 50_000) {
    frames.push(update(seed, first, Math.min(50_000, buckets - first)));
  }
  await send(server.grpcAddress, "big", frames);
  const afterBuckets = await settledRss(server);
  const result = {
    namespaces,
    buckets,
    startRssMiB: Math.round(start / 2 ** 20),
    bytesPerNamespace: Math.round((afterNamespaces - start) / namespaces),
    bytesPerSeed: Math.round((afterSeeds - afterNamespaces) / namespaces),
    bytesPerBucket: Math.round((afterBuckets - afterSeeds) / buckets),
    peakRssMiB: Math.round(server.peakRssBytes() / 2 ** 20),
  };
  if (values.json) console.log(JSON.stringify(result));
  else console.log(result);
} finally {
  await server.stop();
}
