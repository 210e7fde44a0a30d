import type { IncomingMessage, ServerResponse } from "node:http";
import type { HubStats } from "@fair/state-broadcast";
import { type DashboardFile, dashboardFiles } from "@fair/state-dashboard";
import { type Store, StoreError, type StoreStats } from "@fair/state-store";
import {
  bucketKey,
  clientColumns,
  defaultFairnessTrackerConfig,
  explainClient,
  minFinalProbability,
  windowSeedOf,
} from "@fair/tracker";
import { type AuthTokens, describeRefusal } from "./auth-tokens.js";
import { readBuckets } from "./dashboard-explain.js";
import { readSeedView } from "./dashboard-view.js";

/** What the dashboard reads; all of it the server's own objects. */
export interface DashboardDeps {
  readonly store: Store;
  readonly storeStats: () => StoreStats | Promise<StoreStats>;
  readonly hubStats: () => HubStats;
  readonly windowMs: number;
  readonly decayRatePerSecond: number;
  readonly now: () => number;
  /** The tokens `Sync` takes now (they change on reload); `undefined`: no auth. */
  readonly tokens: () => AuthTokens | undefined;
  /** The page's files by name. Default: `@fair/state-dashboard`'s. */
  readonly files?: ReadonlyMap<string, DashboardFile>;
}

/** Serves one request under `/dashboard` of the metrics listener. */
export type DashboardHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** Query limits: enough for any screen, small enough that one answer stays small. */
const maxBins = 1_000;
const maxTop = 200;

/** A request the dashboard refuses, with the status and the message for `{ error }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The live dashboard on the metrics listener:
 *
 * - `GET /dashboard`: the page; `GET /dashboard/<file>`: its script and
 *   style sheet. Only the files `@fair/state-dashboard` ships, looked up by
 *   exact name in the list read at start-up, so no path can reach anything
 *   else. No token needed: the page holds no data.
 * - `GET /dashboard/api/view`: one seed summarised (heat map, hottest
 *   buckets) with the server's counters; the page polls it.
 * - `GET /dashboard/api/explain`: one client's buckets and throttle
 *   probability in the current window, as `fair-state explain` prints them.
 *
 * With tokens configured, both APIs need `authorization: Bearer <token>`
 * allowed for the namespace read, as `Sync` does: 401 without a known
 * token, 403 for a token of other namespaces. They only read.
 */
export function createDashboardHandler(deps: DashboardDeps): DashboardHandler {
  const files = deps.files ?? dashboardFiles();
  // A viewer asking for a seed while a read of it (same parameters) is under
  // way shares that read: tabs polling a big seed at once cost one scan.
  const inFlight = new Map<string, Promise<unknown>>();

  const view = async (query: URLSearchParams) => {
    const namespace = query.get("namespace") ?? "";
    const nowMs = deps.now();
    const seed = seedOf(query.get("seed"), nowMs, deps.windowMs);
    const bins = integer(query, "bins", 100, 1, maxBins);
    const top = integer(query, "top", 20, 0, maxTop);
    const key = JSON.stringify([namespace, seed.toString(), bins, top]);
    let answer = inFlight.get(key);
    if (answer === undefined) {
      answer = (async () => {
        const summary = await readSeedView(deps.store.namespace(namespace), seed, {
          bins,
          top,
          nowMs,
          decayRatePerSecond: deps.decayRatePerSecond,
        });
        const [stats, hub] = [await deps.storeStats(), deps.hubStats()];
        return {
          namespace,
          seed: seed.toString(),
          windowMs: deps.windowMs,
          nowMs,
          decayRatePerSecond: deps.decayRatePerSecond,
          ...summary,
          server: {
            // The counters behind fair_state_deltas_applied_total,
            // fair_state_buckets_broadcast_total and the open streams; the
            // page turns two polls of them into rates.
            deltasApplied: stats.appliedDeltas,
            bucketsBroadcast: hub.bucketsDelivered,
            connectedStreams: hub.subscribers,
          },
        };
      })().finally(() => inFlight.delete(key));
      inFlight.set(key, answer);
    }
    return answer;
  };

  const explainOne = async (query: URLSearchParams) => {
    const namespace = query.get("namespace") ?? "";
    const trackerId = query.get("trackerId") ?? "";
    const clientId = query.get("clientId") ?? "";
    if (trackerId === "") throw new HttpError(400, "trackerId is required");
    if (clientId === "") throw new HttpError(400, "clientId is required");
    const defaults = defaultFairnessTrackerConfig();
    const windowMs = integer(query, "windowMs", deps.windowMs, 1, Number.MAX_SAFE_INTEGER);
    if (windowMs !== deps.windowMs) {
      throw new HttpError(
        400,
        `windowMs ${windowMs} is not the server's window (${deps.windowMs} ms); the trackers' rotationFrequencyMs must equal it`,
      );
    }
    const tracker = {
      trackerId,
      // Levels are rows, and a store holds at most 2^16 of them; a bigger l
      // would only make the tracker's hashing allocate a huge array.
      l: integer(query, "l", defaults.l, 1, 2 ** 16),
      m: integer(query, "m", defaults.m, 1, 0xffff_ffff),
      lambda: number(query, "lambda", deps.decayRatePerSecond),
      finalProbabilityFunction: minFinalProbability,
    };
    const atMs = deps.now();
    const seed = seedOf("current", atMs, windowMs);
    const wanted = new Set(
      clientColumns(clientId, tracker, seed).map((col, row) => bucketKey(row, col)),
    );
    const held = await readBuckets(deps.store.namespace(namespace), seed, wanted);
    return explainClient(clientId, tracker, seed, held, atMs);
  };

  const apis: Record<string, (query: URLSearchParams) => Promise<unknown>> = {
    view,
    explain: explainOne,
  };

  return (request, response) => {
    // The path exactly as sent, never normalised or decoded: it must equal
    // one of a few fixed names, so "..", "%2e%2e" and the like match none.
    const target = request.url ?? "/";
    const mark = target.indexOf("?");
    const path = mark < 0 ? target : target.slice(0, mark);
    const query = new URLSearchParams(mark < 0 ? "" : target.slice(mark + 1));
    if (path === "/dashboard") {
      sendFile(response, files.get("index.html"));
    } else if (path === "/dashboard/") {
      // Relative, so the page's own relative links resolve behind a path prefix too.
      response.writeHead(301, { location: "../dashboard" }).end();
    } else if (path.startsWith("/dashboard/api/")) {
      const api = apis[path.slice("/dashboard/api/".length)];
      if (api === undefined) {
        sendJson(response, 404, { error: "try /dashboard/api/view or /dashboard/api/explain" });
        return;
      }
      const refusal = refuse(deps.tokens(), request, query.get("namespace") ?? "");
      if (refusal) {
        sendJson(response, refusal.status, { error: refusal.message });
        return;
      }
      api(query).then(
        (body) => sendJson(response, 200, body),
        (error: unknown) => {
          if (error instanceof HttpError)
            sendJson(response, error.status, { error: error.message });
          else if (error instanceof StoreError) {
            const status = error.code === "invalid_argument" || error.code === "out_of_range";
            sendJson(response, status ? 400 : 503, { error: error.message });
          } else sendJson(response, 500, { error: `cannot read the store: ${String(error)}` });
        },
      );
    } else {
      // The page itself only at /dashboard: its relative links resolve from there.
      const name = path.slice("/dashboard/".length);
      sendFile(response, name === "index.html" ? undefined : files.get(name));
    }
  };
}

/** Why a token does not let this request read `namespace`; `undefined` when it does. */
function refuse(
  tokens: AuthTokens | undefined,
  request: IncomingMessage,
  namespace: string,
): HttpError | undefined {
  if (tokens === undefined) return undefined;
  const decision = tokens.check(request.headers.authorization ?? null, namespace);
  if (decision.ok) return undefined;
  const { denied, message } = describeRefusal(decision.refusal, namespace);
  return new HttpError(
    denied ? 403 : 401,
    decision.refusal === "missing"
      ? `${message}: enter a token in the page's token field`
      : message,
  );
}

/** `current` (the default), `next`, or a window start in Unix ms. */
function seedOf(text: string | null, nowMs: number, windowMs: number): bigint {
  const current = windowSeedOf(nowMs, windowMs);
  if (text === null || text === "" || text === "current") return current;
  if (text === "next") return current + BigInt(windowMs);
  if (!/^\d{1,20}$/.test(text)) {
    throw new HttpError(
      400,
      `seed: expected "current", "next" or a window start in ms, got ${text}`,
    );
  }
  return BigInt(text);
}

function integer(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = query.get(name);
  if (text === null || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HttpError(400, `${name}: expected an integer from ${min} to ${max}, got ${text}`);
  }
  return value;
}

function number(query: URLSearchParams, name: string, fallback: number): number {
  const text = query.get(name);
  if (text === null || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new HttpError(400, `${name}: expected a number of at least 0, got ${text}`);
  }
  return value;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      // Live data: never from a cache.
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    })
    .end(JSON.stringify(body));
}

function sendFile(response: ServerResponse, file: DashboardFile | undefined): void {
  if (file === undefined) {
    response.writeHead(404, { "content-type": "text/plain" }).end("no such dashboard file\n");
    return;
  }
  response
    .writeHead(200, {
      "content-type": file.contentType,
      "content-length": file.body.length,
      // Revalidated on every load, so a new version of the page is seen at once.
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    })
    .end(file.body);
}
