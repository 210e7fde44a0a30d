import { readFileSync } from "node:fs";

/**
 * This package's version, from its own package.json: one level above both
 * `src/` (in the workspace) and `dist/` (as published), and always shipped.
 * The server reports it in `--version` and `fair_state_build_info`.
 */
export const serverVersion: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
