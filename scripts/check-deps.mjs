// Enforces ARCHITECTURE.md's import rules on the code itself: the rules are
// read from its "Who may import whom" table (never copied here), each
// package's manifest may depend only on what its row allows, and every import
// in a package's sources must name a package its package.json declares.
// `checkDeps(rootDir)` returns the problems; run as a script, it checks this
// repository and exits 1 on any.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { root } from "./proto.mjs";

const importsHeading = "## Who may import whom";
const ownsHeading = "## Who owns what";
/** The folders of a package whose files are tests or tooling: they may also use devDependencies. */
const toolingDirs = new Set(["test", "bench", "eval"]);
/** The folders of a package whose files are scanned for imports. */
const sourceDirs = ["src", ...toolingDirs];
const sourceFile = /\.(?:[cm]?ts|[cm]?js)$/;
const testFile = /\.test\.(?:[cm]?ts|[cm]?js)$/;

/**
 * Every problem with the import rules under rootDir, one line each; none when
 * every package imports and depends only on what it may.
 */
export function checkDeps(rootDir) {
  const problems = [];
  const packages = workspacePackages(rootDir);
  const byName = new Map(packages.map((pkg) => [pkg.name, pkg]));
  const rootManifest = readJson(join(rootDir, "package.json")) ?? {};
  const rootTools = new Set(
    Object.keys({ ...rootManifest.dependencies, ...rootManifest.devDependencies }),
  );

  const architecturePath = join(rootDir, "ARCHITECTURE.md");
  if (existsSync(architecturePath)) {
    const markdown = readFileSync(architecturePath, "utf8");
    checkImportTable(markdown, packages, byName, problems);
    checkOwnersTable(markdown, rootDir, packages, byName, problems);
  } else {
    problems.push("ARCHITECTURE.md is missing: it holds the import rules");
  }
  for (const pkg of packages) checkSources(pkg, packages, rootTools, problems);
  return problems;
}

/** The rows of "Who may import whom" against the workspace, and each manifest against its row. */
function checkImportTable(markdown, packages, byName, problems) {
  const rows = tableRows(markdown, importsHeading);
  if (rows === undefined) {
    problems.push(`ARCHITECTURE.md has no "${importsHeading.slice(3)}" table`);
    return;
  }
  const allowed = new Map();
  for (const { line, cells } of rows) {
    const where = `ARCHITECTURE.md:${line}`;
    const names = fairNames(cells[0] ?? "");
    if (names.length !== 1) {
      problems.push(`${where}: a "${importsHeading.slice(3)}" row must name one package`);
      continue;
    }
    const [name] = names;
    if (!byName.has(name)) {
      problems.push(`${where}: the import table has a row for ${name}, which is not a package`);
    } else if (allowed.has(name)) {
      problems.push(`${where}: the import table has a second row for ${name}`);
    }
    const may = fairNames(cells[1] ?? "");
    for (const dep of may.filter((d) => !byName.has(d))) {
      problems.push(`${where}: ${name}'s row allows ${dep}, which is not a package`);
    }
    if (!allowed.has(name)) allowed.set(name, may);
  }

  for (const pkg of packages) {
    const rule = allowed.get(pkg.name);
    if (rule === undefined) {
      problems.push(`${pkg.dir}: ${pkg.name} has no row in ARCHITECTURE.md's import table`);
      continue;
    }
    const deps = Object.keys({ ...pkg.manifest.dependencies, ...pkg.manifest.peerDependencies });
    for (const dep of deps.filter((d) => d.startsWith("@fair/") || byName.has(d))) {
      if (dep !== pkg.name && !rule.includes(dep)) {
        const may = rule.length > 0 ? rule.join(", ") : "no workspace package";
        problems.push(
          `${pkg.dir}/package.json: ${pkg.name} may not depend on ${dep} (ARCHITECTURE.md allows ${may})`,
        );
      }
    }
  }
}

/** "Who owns what" must have a row for every published package and name only what exists. */
function checkOwnersTable(markdown, rootDir, packages, byName, problems) {
  const rows = tableRows(markdown, ownsHeading);
  if (rows === undefined) {
    problems.push(`ARCHITECTURE.md has no "${ownsHeading.slice(3)}" table`);
    return;
  }
  const byDir = new Map(packages.map((pkg) => [pkg.dir, pkg]));
  const owned = new Set();
  for (const { line, cells } of rows) {
    for (const token of backticked(cells[0] ?? "")) {
      const folder = /^((?:apps|packages)\/[^/]+)\/?$/.exec(token)?.[1];
      let name;
      if (token.startsWith("@fair/")) name = packageName(token);
      else if (folder !== undefined) name = byDir.get(folder)?.name;
      else if (token.includes("/")) {
        if (!existsSync(join(rootDir, token))) {
          problems.push(
            `ARCHITECTURE.md:${line}: the owners table names ${token}, which does not exist`,
          );
        }
        continue;
      } else continue;
      if (name === undefined || !byName.has(name)) {
        problems.push(
          `ARCHITECTURE.md:${line}: the owners table has a row for ${token}, which is not a package`,
        );
      } else owned.add(name);
    }
  }
  for (const pkg of packages.filter((p) => p.manifest.private !== true && !owned.has(p.name))) {
    problems.push(`${pkg.dir}: ${pkg.name} has no row in ARCHITECTURE.md's owners table`);
  }
}

/** Every import in a package's sources must name a package its package.json declares. */
function checkSources(pkg, packages, rootTools, problems) {
  const { dependencies, peerDependencies, devDependencies } = pkg.manifest;
  const runtime = new Set(Object.keys({ ...dependencies, ...peerDependencies }));
  const dev = new Set(Object.keys({ ...devDependencies }));
  for (const file of sourceDirs.flatMap((dir) => listSources(pkg.path, dir))) {
    const tooling = toolingDirs.has(file.split("/")[0] ?? "") || testFile.test(file);
    const text = readFileSync(join(pkg.path, file), "utf8");
    const lineStarts = lineStartsOf(text);
    for (const { fileName: specifier, pos } of ts.preProcessFile(text, true, true).importedFiles) {
      const where = `${pkg.dir}/${file}:${lineOf(lineStarts, pos)}`;
      if (specifier === "." || specifier === ".." || /^\.\.?\//.test(specifier)) {
        const target = resolve(pkg.path, dirname(file), specifier);
        if (inside(pkg.path, target)) continue;
        const other = packages.find((p) => inside(p.path, target));
        if (other !== undefined) {
          problems.push(
            `${where}: imports "${specifier}", a path into ${other.dir}; import ${other.name} by name`,
          );
        } else if (!tooling) {
          problems.push(`${where}: imports "${specifier}", which is outside ${pkg.dir}`);
        }
        continue;
      }
      // Builtins (node:fs, fs), package-internal aliases (#x), URLs and absolute paths.
      if (isBuiltin(specifier) || /^(?:#|\/|[a-z][a-z0-9+.-]*:)/i.test(specifier)) continue;
      const dep = packageName(specifier);
      if (dep === pkg.name || runtime.has(dep)) continue;
      if (tooling) {
        if (dev.has(dep) || rootTools.has(dep)) continue;
        problems.push(
          `${where}: imports "${dep}", which ${pkg.name}'s package.json does not declare (add it to devDependencies)`,
        );
      } else if (dev.has(dep)) {
        problems.push(
          `${where}: imports "${dep}", which ${pkg.name}'s package.json declares only in devDependencies (move it to dependencies)`,
        );
      } else {
        problems.push(
          `${where}: imports "${dep}", which ${pkg.name}'s package.json does not declare (add it to dependencies)`,
        );
      }
    }
  }
}

/** Each packages/* and apps/* folder with a package.json, sorted by folder. */
function workspacePackages(rootDir) {
  const packages = [];
  for (const group of ["packages", "apps"]) {
    const groupPath = join(rootDir, group);
    if (!existsSync(groupPath)) continue;
    for (const folder of readdirSync(groupPath).sort()) {
      const path = join(groupPath, folder);
      const manifest = readJson(join(path, "package.json"));
      if (manifest === undefined) continue;
      packages.push({ dir: `${group}/${folder}`, path, name: manifest.name, manifest });
    }
  }
  return packages;
}

/**
 * The body rows of the first markdown table under heading (before the next
 * heading), each with its 1-based line and trimmed cells; undefined without one.
 */
function tableRows(markdown, heading) {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) return undefined;
  const table = [];
  for (let i = start + 1; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (line.startsWith("#")) break;
    if (line.startsWith("|")) table.push({ line: i + 1, cells: splitRow(line) });
    else if (table.length > 0) break;
  }
  if (table.length === 0) return undefined;
  // The header row, then the |---|---| rule under it.
  return table.slice(1).filter(({ cells }) => !cells.every((cell) => /^:?-+:?$/.test(cell)));
}

function splitRow(line) {
  return line
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split("|")
    .map((cell) => cell.trim());
}

/** The backticked texts in a table cell. */
function backticked(cell) {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => (match[1] ?? "").trim());
}

/** The workspace package names a cell lists; the rest of the cell is commentary. */
function fairNames(cell) {
  const names = backticked(cell)
    .filter((text) => /^@fair\/[^\s/]+(?:\/\S*)?$/.test(text))
    .map(packageName);
  return [...new Set(names)];
}

/** The package a bare specifier names: `@scope/name` or `name`, without a subpath. */
function packageName(specifier) {
  const parts = specifier.split("/");
  return (specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)).join("/");
}

/** The source files under packagePath/dir, relative to packagePath with / separators, sorted. */
function listSources(packagePath, dir) {
  const out = [];
  const walk = (relDir) => {
    const abs = join(packagePath, relDir);
    for (const name of readdirSync(abs).sort()) {
      if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
      const rel = `${relDir}/${name}`;
      if (statSync(join(abs, name)).isDirectory()) walk(rel);
      else if (sourceFile.test(name)) out.push(rel);
    }
  };
  if (existsSync(join(packagePath, dir)) && statSync(join(packagePath, dir)).isDirectory()) {
    walk(dir);
  }
  return out;
}

function inside(dir, path) {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function lineStartsOf(text) {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/** The 1-based line holding position pos. */
function lineOf(lineStarts, pos) {
  let low = 0;
  let high = lineStarts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= pos) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}

function readJson(path) {
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : undefined;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkDeps(root);
  if (problems.length > 0) {
    console.error(
      `check-deps: import rules broken (see ARCHITECTURE.md):\n  ${problems.join("\n  ")}`,
    );
    process.exit(1);
  }
  console.log(
    "check-deps: every package imports and depends only on what ARCHITECTURE.md and its package.json allow",
  );
}
