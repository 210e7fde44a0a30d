// The live dashboard in a real browser: headless Chromium (Debian's
// `chromium`, which .ci/run installs) opens /dashboard on a real server,
// and the heat map and the hot-bucket table must show the deltas sent, then
// follow the next ones. Plus the dashboard's data behind tokens, by fetch.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { SyncRequestSchema } from "@fair/state-proto";
import { loadConfig, type RunningStateServer } from "@fair/state-server";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { closeAll, type RawStream, rawSession, rawSync, requestFrame } from "./abuse-clients.js";
import { serveInProcess } from "./in-process-server.js";

const chromiumPath = "/usr/bin/chromium";
const windowMs = 300_000;
const artifacts = fileURLToPath(new URL("artifacts/", import.meta.url));

// The server's clock starts 10 s into a window, whenever the test runs, so
// "the current window" cannot roll over under the test.
const shift = (Date.now() % windowMs) - 10_000;
const serverNow = () => Date.now() - shift;
const seed = BigInt(Math.floor(serverNow() / windowMs) * windowMs);

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  closeAll();
});

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
});

/** The one browser of this file; fails, never skips, when Chromium is missing. */
async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium is not installed at ${chromiumPath}: the dashboard test needs it. Install Debian's package: ` +
        "apt-get update && apt-get install -y --no-install-recommends chromium (.ci/run does this)",
    );
  }
  browser ??= await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  return browser;
}

async function startServer(extra: { authTokensFile?: string } = {}): Promise<RunningStateServer> {
  const running = await serveInProcess({ windowMs, ...extra }, serverNow);
  closers.push(() => running.shutdown(500));
  return running;
}

/** `[rowId, colId, deltaProb]`, stamped with the server's now. */
type Delta = readonly [number, number, number];

/** Sends one DeltaUpdate stamped with the server's now; returns that stamp. */
function send(sync: RawStream, deltas: readonly Delta[]): number {
  const stampedAt = serverNow();
  const ts = BigInt(stampedAt);
  sync.stream.write(
    requestFrame(
      create(SyncRequestSchema, {
        request: {
          case: "deltaUpdate",
          value: {
            seed,
            deltas: deltas.map(([row, col, deltaProb]) => ({
              rowId: BigInt(row),
              colId: BigInt(col),
              deltaProb,
              lastUpdateTimeMs: ts,
            })),
          },
        },
      }),
    ),
  );
  return stampedAt;
}

/**
 * Waits, with Playwright's own polling, until the page's DOM satisfies
 * `condition` (a browser-side expression: the test's TypeScript has no DOM
 * types). Rejects after 10 s with `what`.
 */
async function waitForPage(page: Page, condition: string, what: string): Promise<void> {
  try {
    await page.waitForFunction(condition, undefined, { timeout: 10_000, polling: 100 });
  } catch (error) {
    // What the page showed instead, and a picture of it, to see why.
    const status = await page.locator("#status").textContent();
    const hot = await page.locator("#hot tbody tr").first().textContent();
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "dashboard-failed.png"), fullPage: true });
    throw new Error(
      `timed out waiting for ${what} (page status: ${status}; first hot row: ${hot}; screenshot: test/artifacts/dashboard-failed.png)`,
      { cause: error },
    );
  }
}

/** The heat map cell of `row` covering column `col`, as a browser-side expression. */
const cellOf = (row: number, col: number) =>
  `[...document.querySelectorAll('#heatmap rect[data-row="${row}"]')].find((r) => Number(r.dataset.from) <= ${col} && ${col} <= Number(r.dataset.to))`;

/** A hot-table row of `row`, `col`, as a browser-side expression. */
const hotRowOf = (row: number, col: number) =>
  `document.querySelector('#hot tbody tr[data-row="${row}"][data-col="${col}"]')`;

/** The server's λ, per second (the default). */
const lambda = loadConfig({ argv: [], env: {} }).config.decayRatePerSecond;

/**
 * Whether the element `expression` finds carries (in `data-prob`) a bucket
 * worth `prob` at `atMs` (server time), decayed to the browser's now: the
 * page shows values decayed to its last poll, so they fall a little every
 * second. The tolerance, 0.01, covers a poll or two of lag.
 */
const near = (expression: string, prob: number, atMs: number) =>
  `(() => { const e = ${expression}; const now = Date.now() - ${shift}; const want = ${prob} * Math.exp(-${lambda} * Math.max(0, now - ${atMs}) / 1000); return e != null && Math.abs(Number(e.dataset.prob) - want) < 0.01; })()`;

describe("the dashboard in headless Chromium", () => {
  test("shows the deltas sent in the heat map and the hot table, and follows the next ones", async () => {
    const running = await startServer();
    const session = await rawSession(running.grpcAddress);
    const sync = rawSync(session, "checkout");
    // A background of cooler buckets on every level, for a map worth looking
    // at; none as hot as the known ones, none in the bins of columns 0-9.
    const background: Delta[] = [];
    for (let i = 0; i < 400; i++) {
      background.push([i % 4, 10 + ((i * 397) % 990), 0.02 + ((i * 13) % 17) / 80]);
    }
    send(sync, background);

    const page = await (await launchBrowser()).newPage({ viewport: { width: 1280, height: 900 } });
    closers.push(() => page.close());
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    const response = await page.goto(`http://${running.metricsAddress}/dashboard`);
    expect(response?.status()).toBe(200);
    await page.fill("#namespace", "checkout");
    // Leaving the field commits it (its change event), as a user's Tab would.
    await page.press("#namespace", "Tab");
    await waitForPage(
      page,
      `document.querySelectorAll("#hot tbody tr").length === 20`,
      "the background buckets",
    );

    // The known deltas, while the page is open.
    const sentAt = send(sync, [
      [0, 7, 0.6],
      [1, 42, 0.3],
      [2, 99, 0.9],
    ]);
    // The hottest bucket first: level 2, bucket 99, ~0.9 (decayed a little by now).
    await waitForPage(
      page,
      `(() => { const r = document.querySelector("#hot tbody tr"); return r != null && r.dataset.row === "2" && r.dataset.col === "99" && ${near("r", 0.9, sentAt)}; })()`,
      "the hot table to lead with level 2, bucket 99",
    );
    const first = page.locator("#hot tbody tr").first().locator("td");
    expect(await first.allTextContents()).toEqual([
      "2",
      "99",
      expect.stringMatching(/^0\.(?:89|90)\d\d$/),
      "0.9000",
      expect.stringMatching(/^\d+\.\d s$/),
    ]);
    await waitForPage(page, near(hotRowOf(1, 42), 0.3, sentAt), "level 1, bucket 42 at ~0.3");
    await waitForPage(
      page,
      near(cellOf(0, 7), 0.6, sentAt),
      "the heat map cell of level 0, column 7, at ~0.6",
    );
    await waitForPage(
      page,
      near(cellOf(2, 99), 0.9, sentAt),
      "the heat map cell of level 2, column 99, at ~0.9",
    );
    const cell = page.locator('#heatmap rect[data-row="0"][data-from="0"]');
    expect(await cell.locator("title").textContent()).toMatch(
      /^level 0, buckets 0–\d+: max 0\.(?:59|60)\d\d$/,
    );
    await waitForPage(
      page,
      `Number(document.getElementById("streams").textContent) >= 1 && document.getElementById("buckets").textContent === "${(403).toLocaleString("en-US")}"`,
      "one connected stream and the 403 buckets held",
    );

    // More of the same bucket: the page follows within a poll or two.
    const addedAt = send(sync, [[0, 7, 0.3]]);
    // The store decays the old value to the delta's time, then adds.
    const raised = 0.6 * Math.exp((-lambda * (addedAt - sentAt)) / 1000) + 0.3;
    await waitForPage(
      page,
      near(cellOf(0, 7), raised, addedAt),
      "the heat map cell of level 0, column 7, to rise to ~0.9",
    );
    await waitForPage(
      page,
      near(hotRowOf(0, 7), raised, addedAt),
      "level 0, bucket 7 at ~0.9 in the hot table",
    );
    await waitForPage(
      page,
      `/^\\d/.test(document.getElementById("ingest").textContent) && /^\\d/.test(document.getElementById("fanout").textContent)`,
      "the ingest and fan-out rates",
    );

    // The explain view: a client's buckets by the tracker's own hashing.
    await page.fill('#explain input[name="trackerId"]', "checkout");
    await page.fill('#explain input[name="clientId"]', "user-42");
    await page.click('#explain button[type="submit"]');
    await waitForPage(
      page,
      `/throttle probability/.test(document.getElementById("explain-result").textContent) && document.querySelectorAll("#explained tbody tr").length > 0`,
      "the explanation of user-42",
    );

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
    expect(errors).toEqual([]);
  });
});

describe("the dashboard's data with tokens", () => {
  test("needs a token allowed for the namespace: 401 without one, 403 for another namespace's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fair-dashboard-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "tokens");
    writeFileSync(file, "checkout-token-0123456789 checkout\nother-token-0123456789abc other\n");
    const running = await startServer({ authTokensFile: file });
    const base = `http://${running.metricsAddress}`;
    const view = (token?: string) =>
      fetch(`${base}/dashboard/api/view?namespace=checkout`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      });

    const missing = await view();
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: string }).error).toMatch(/authorization: Bearer/);
    const unknown = await view("not-a-token-we-know-of");
    expect(unknown.status).toBe(401);
    const other = await view("other-token-0123456789abc");
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: string }).error).toMatch(/namespace "checkout"/);
    const good = await view("checkout-token-0123456789");
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({
      namespace: "checkout",
      seed: String(seed),
      buckets: 0,
    });
    const explained = await fetch(
      `${base}/dashboard/api/explain?namespace=other&trackerId=t&clientId=c`,
      { headers: { authorization: "Bearer checkout-token-0123456789" } },
    );
    expect(explained.status).toBe(403);

    // The page itself holds no data and needs no token.
    const page = await fetch(`${base}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
  });
});
