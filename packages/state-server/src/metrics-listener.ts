import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import type { DashboardHandler } from "./dashboard.js";

/**
 * The operator's HTTP/1.1 listener, kept apart from the gRPC port so probes
 * and scrapes never compete with Sync streams:
 * `/metrics` (Prometheus text), `/healthz` (the process is alive),
 * `/readyz` (200 while SERVING, 503 from the moment shutdown begins), and
 * with `dashboard` the live dashboard under `/dashboard` (`dashboard.ts`):
 * it is read-only and plain HTTP/1.1, so it travels wherever the metrics
 * port does, `kubectl port-forward` included.
 */
export function createMetricsListener(
  registry: Registry,
  serving: () => boolean,
  dashboard?: DashboardHandler,
): Server {
  return createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
        (error: unknown) =>
          response.writeHead(500).end(`cannot collect metrics: ${String(error)}\n`),
      );
    } else if (path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ready = serving();
      response
        .writeHead(ready ? 200 : 503, { "content-type": "text/plain" })
        .end(ready ? "ready\n" : "not serving\n");
    } else if (dashboard && (path === "/dashboard" || path?.startsWith("/dashboard/"))) {
      dashboard(request, response);
    } else {
      response
        .writeHead(404, { "content-type": "text/plain" })
        .end(`try /metrics, /healthz${dashboard ? ", /readyz or /dashboard" : " or /readyz"}\n`);
    }
  });
}
