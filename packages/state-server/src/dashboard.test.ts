// The dashboard's routes and JSON on a real metrics listener (fake clock):
// only the page's own files, the view's aggregation and decay, the explain
// view against the tracker's hashing, and the view's cost at 1M buckets.
import { request } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { clientColumns } from "@fair/tracker";
import { afterEach, describe, expect, test } from "vitest";
import { deltaUpdate, seed0, startServer, type TestServer, t0 } from "../test/harness.js";

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(overrides = {}): Promise<TestServer> {
  const server = await startServer(overrides);
  servers.push(server);
  return server;
}

/** GETs `path` exactly as written (fetch would normalise `..`). */
function get(
  server: TestServer,
  path: string,
): Promise<{ status: number; type: string; body: string }> {
  const [host, port] = server.running.metricsAddress.split(":");
  return new Promise((resolve, reject) => {
    request({ host, port, path }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          type: String(response.headers["content-type"]),
          body,
        }),
      );
    })
      .on("error", reject)
      .end();
  });
}

async function json(server: TestServer, path: string): Promise<Record<string, unknown>> {
  const { status, body } = await get(server, path);
  expect(status, body).toBe(200);
  return JSON.parse(body) as Record<string, unknown>;
}

describe("the dashboard's files", () => {
  test("the page at /dashboard, its script and style sheet beside it, each with its type", async () => {
    const server = await start();
    expect(await get(server, "/dashboard")).toMatchObject({
      status: 200,
      type: "text/html; charset=utf-8",
    });
    expect(await get(server, "/dashboard/dashboard.js")).toMatchObject({
      status: 200,
      type: "text/javascript; charset=utf-8",
    });
    expect(await get(server, "/dashboard/dashboard.css")).toMatchObject({
      status: 200,
      type: "text/css; charset=utf-8",
    });
    expect((await get(server, "/dashboard/")).status).toBe(301);
  });

  test("nothing else: no other name, no way out of static/", async () => {
    const server = await start();
    for (const path of [
      "/dashboard/index.html",
      "/dashboard/../package.json",
      "/dashboard/..%2Fpackage.json",
      "/dashboard/%2e%2e/src/index.ts",
      "/dashboard/static/dashboard.js",
      "/dashboard/nope.js",
      "/dashboard/api/other",
      "/dashboardx",
    ]) {
      expect((await get(server, path)).status, path).toBe(404);
    }
    expect((await get(server, "/metrics")).status).toBe(200);
  });
});

describe("/dashboard/api/view", () => {
  test("bins each level's columns, lists the hottest buckets, decayed to now, with the counters", async () => {
    const server = await start();
    const sync = server.connect("checkout");
    sync.send(
      // Columns 0..199: 100 bins of 2 columns.
      deltaUpdateOf([
        [0, 7, 0.6, t0],
        [0, 6, 0.2, t0],
        [1, 42, 0.3, t0],
        [2, 199, 0.9, t0],
      ]),
    );
    await sync.until(() => sync.view(seed0).length >= 4);
    server.time.tick(10_000);

    const view = await json(server, "/dashboard/api/view?namespace=checkout&top=3");
    const decay = Math.exp(-0.01 * 10);
    expect(view).toMatchObject({
      namespace: "checkout",
      seed: String(seed0),
      windowMs: 300_000,
      nowMs: t0 + 10_000,
      buckets: 4,
      columnsPerBin: 2,
      server: { deltasApplied: 4, connectedStreams: 1 },
    });
    const levels = view["levels"] as { rowId: number; bins: number[] }[];
    expect(levels.map((l) => l.rowId)).toEqual([0, 1, 2]);
    expect(levels.every((l) => l.bins.length === 100)).toBe(true);
    expect(levels[0]?.bins[3]).toBeCloseTo(0.6 * decay, 12);
    expect(levels[1]?.bins[21]).toBeCloseTo(0.3 * decay, 12);
    expect(levels[2]?.bins[99]).toBeCloseTo(0.9 * decay, 12);
    expect(levels[0]?.bins.filter((p) => p > 0)).toHaveLength(1);
    expect(view["top"]).toEqual([
      {
        rowId: 2,
        colId: 199,
        prob: expect.closeTo(0.9 * decay, 12),
        storedProb: 0.9,
        lastUpdateTimeMs: t0,
        ageMs: 10_000,
      },
      {
        rowId: 0,
        colId: 7,
        prob: expect.closeTo(0.6 * decay, 12),
        storedProb: 0.6,
        lastUpdateTimeMs: t0,
        ageMs: 10_000,
      },
      {
        rowId: 1,
        colId: 42,
        prob: expect.closeTo(0.3 * decay, 12),
        storedProb: 0.3,
        lastUpdateTimeMs: t0,
        ageMs: 10_000,
      },
    ]);
    expect((view["server"] as { bucketsBroadcast: number }).bucketsBroadcast).toBeGreaterThan(0);

    // Another namespace, the next window: nothing there.
    expect(await json(server, "/dashboard/api/view?namespace=other")).toMatchObject({
      buckets: 0,
      levels: [],
      top: [],
    });
    expect(await json(server, "/dashboard/api/view?namespace=checkout&seed=next")).toMatchObject({
      seed: String(seed0 + 300_000n),
      buckets: 0,
    });
    expect(
      await json(server, `/dashboard/api/view?namespace=checkout&seed=${seed0}`),
    ).toMatchObject({ buckets: 4 });
  });

  test("refuses bad parameters with 400 and a message", async () => {
    const server = await start();
    for (const query of [
      "bins=0",
      "bins=1001",
      "top=201",
      "top=x",
      "seed=yesterday",
      "seed=12345",
    ]) {
      const { status, body } = await get(server, `/dashboard/api/view?${query}`);
      expect(status, query).toBe(400);
      expect((JSON.parse(body) as { error: string }).error, query).not.toBe("");
    }
  });
});

describe("/dashboard/api/explain", () => {
  test("a client's bucket on each level by the tracker's hashing, and the min of them", async () => {
    const server = await start();
    const tracker = { trackerId: "checkout", l: 3, m: 1000, lambda: 0.01 };
    const columns = clientColumns("user-42", tracker, seed0);
    const sync = server.connect("shop");
    sync.send(deltaUpdateOf(columns.map((col, row) => [row, col, 0.2 * (row + 1), t0] as const)));
    await sync.until(() => sync.view(seed0).length >= 3);
    server.time.tick(5_000);

    const explained = await json(
      server,
      "/dashboard/api/explain?namespace=shop&trackerId=checkout&clientId=user-42&l=3&m=1000",
    );
    const decay = Math.exp(-0.01 * 5);
    expect(explained).toEqual({
      seed: String(seed0),
      buckets: columns.map((colId, rowId) => ({
        rowId,
        colId,
        prob: expect.closeTo(0.2 * (rowId + 1) * decay, 12),
        storedProb: expect.closeTo(0.2 * (rowId + 1), 12),
        lastUpdateTimeMs: t0,
        ageMs: 5_000,
      })),
      finalProbability: expect.closeTo(0.2 * decay, 12),
    });
    const missing = await get(server, "/dashboard/api/explain?trackerId=checkout");
    expect(missing.status).toBe(400);
    const otherWindow = await get(
      server,
      "/dashboard/api/explain?trackerId=checkout&clientId=c&windowMs=60000",
    );
    expect(otherWindow.status).toBe(400);
  });
});

describe("the view at a million buckets", () => {
  test("answers in bounded time and never blocks the event loop for long", {
    timeout: 120_000,
  }, async () => {
    const server = await start();
    const { store } = server.running.server;
    const count = 1_000_000;
    // Straight into the store: 4 levels of 250,000 columns.
    for (let start = 0; start < count; start += 10_000) {
      const deltas = [];
      for (let i = start; i < start + 10_000; i++) {
        deltas.push({
          rowId: i % 4,
          colId: Math.floor(i / 4),
          deltaProb: ((i % 9_973) + 1) / 10_000,
          lastUpdateTimeMs: t0,
        });
      }
      await store.applyUpdate({ seed: seed0, deltas });
    }

    const runs: { ms: number; blockMs: number; bytes: number }[] = [];
    for (let run = 0; run < 5; run++) {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const started = performance.now();
      const { status, body } = await get(server, "/dashboard/api/view?bins=1000&top=200");
      const ms = performance.now() - started;
      delay.disable();
      expect(status).toBe(200);
      const view = JSON.parse(body) as { buckets: number; columnsPerBin: number; top: unknown[] };
      expect(view.buckets).toBe(count);
      expect(view.columnsPerBin).toBe(250);
      expect(view.top).toHaveLength(200);
      runs.push({ ms, blockMs: delay.max / 1e6, bytes: body.length });
    }
    // The figures for docs/decisions/0012-dashboard.md.
    console.log(
      `dashboard view at ${count} buckets (bins=1000, top=200), node ${process.version}:`,
      runs
        .map(
          (r) =>
            `${r.ms.toFixed(0)} ms, longest block ${r.blockMs.toFixed(1)} ms, ${r.bytes} bytes`,
        )
        .join("; "),
    );
    // Generous bounds for a busy CI machine; the point is that a page of
    // work, not the seed, bounds each block.
    for (const run of runs) {
      expect(run.ms).toBeLessThan(10_000);
      expect(run.blockMs).toBeLessThan(250);
    }
  });
});

function deltaUpdateOf(deltas: readonly (readonly [number, number, number, number])[]) {
  return deltaUpdate(seed0, deltas);
}
