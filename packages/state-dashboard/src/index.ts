/**
 * `@fair/state-dashboard`: the State Service's live dashboard, a static
 * page with no framework, no bundler and nothing from a CDN, so it works
 * offline and through `kubectl port-forward`. The server serves these files
 * at `/dashboard` on its metrics listener and feeds the page JSON of its
 * own (`/dashboard/api/view`, `/dashboard/api/explain`).
 *
 * @example
 * ```ts
 * import { dashboardFiles } from "@fair/state-dashboard";
 *
 * const files = dashboardFiles(); // "index.html", "dashboard.js", "dashboard.css"
 * const page = files.get("index.html");
 * ```
 *
 * @packageDocumentation
 */

import { readdirSync, readFileSync } from "node:fs";

/** One file of the page, ready to send. */
export interface DashboardFile {
  /** The `content-type` header to send it with. */
  readonly contentType: string;
  readonly body: Buffer;
}

// Only these kinds of file are served; anything else in static/ is left out,
// so a stray file can never be served with a guessed type.
const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * Every file of the page by its name (`index.html`, `dashboard.js`, …),
 * read once from the package's `static/` directory. The same relative path
 * works from `src/` (tests, development) and `dist/` (the built package and
 * the image), since `static/` sits beside both. Reading everything up front
 * gives the server a fixed list of names to serve: a request for any other
 * name, `../` included, simply finds nothing.
 *
 * @throws when `static/` cannot be read (a broken install).
 */
export function dashboardFiles(): ReadonlyMap<string, DashboardFile> {
  const dir = new URL("../static/", import.meta.url);
  const files = new Map<string, DashboardFile>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const dot = entry.name.lastIndexOf(".");
    const contentType = dot < 0 ? undefined : contentTypes[entry.name.slice(dot)];
    if (contentType === undefined) continue;
    files.set(entry.name, { contentType, body: readFileSync(new URL(entry.name, dir)) });
  }
  return files;
}
