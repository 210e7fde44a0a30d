// --svg: entitlement Jain and TTT50 against N for (a), (b) and each (c) configuration, one row
// of two panels per scenario under one legend. Hand-written SVG: no dependencies.
import type { Summary } from "./aggregate.js";

const panelWidth = 420;
const panelHeight = 260;
/** Legend entries per line, and the height of one line. */
const legendPerLine = 4;
const legendLine = 18;
const margin = { left: 56, right: 16, top: 36, bottom: 44 };
const palette = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6f4e7c", "#00798c"];

interface Series {
  readonly name: string;
  readonly points: { n: number; y: number }[];
}

/** The chart of `summaries` (distributed part) as an SVG document. */
export function renderSvg(summaries: readonly Summary[]): string {
  const distributed = summaries.filter((s) => s.first.part === "distributed");
  const scenarioNames = [...new Set(distributed.map((s) => s.first.scenario))];
  const names = [...new Set(distributed.flatMap((s) => seriesName(s) ?? []))];
  const color = (name: string) => palette[names.indexOf(name) % palette.length] as string;
  const parts: string[] = [];
  const legendHeight = 8 + Math.max(1, Math.ceil(names.length / legendPerLine)) * legendLine;
  names.forEach((name, i) => {
    const x = margin.left + (i % legendPerLine) * 200;
    const y = 8 + Math.floor(i / legendPerLine) * legendLine;
    parts.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${color(name)}"/>`);
    parts.push(`<text x="${x + 15}" y="${y + 9}">${escapeXml(name)}</text>`);
  });
  scenarioNames.forEach((scenario, row) => {
    const mine = distributed.filter((s) => s.first.scenario === scenario);
    const y = legendHeight + row * (panelHeight + 20);
    const jain = seriesOf(mine, (s) => s.entitlementJain);
    const ttt = seriesOf(mine, (s) => (s.ttt50Ms === null ? null : s.ttt50Ms / 1000));
    parts.push(panel(`${scenario}: entitlement Jain`, jain, color, 0, y, false));
    parts.push(panel(`${scenario}: TTT50 (s)`, ttt, color, panelWidth + 20, y, true));
  });
  const width = 2 * panelWidth + 20;
  const height = legendHeight + Math.max(1, scenarioNames.length) * (panelHeight + 20);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    "</svg>",
  ].join("\n");
}

function seriesName(s: Summary): string | undefined {
  const r = s.first;
  if (r.mode === "centralized") return "(a) centralized";
  if (r.mode === "independent") return "(b) independent";
  if (r.mode === "shared") {
    const store = r.storeFlushMs === undefined ? "" : ` S=${r.storeFlushMs}`;
    return `(c) shared d=${r.delayMs} B=${r.batchMs}${store}`;
  }
  return undefined;
}

function seriesOf(summaries: readonly Summary[], metric: (s: Summary) => number | null): Series[] {
  const byName = new Map<string, Series>();
  for (const s of summaries) {
    const name = seriesName(s);
    const value = metric(s);
    if (name === undefined || value === null) continue;
    const series = byName.get(name) ?? { name, points: [] };
    series.points.push({ n: s.first.instances, y: value });
    byName.set(name, series);
  }
  return [...byName.values()].map((s) => ({ ...s, points: s.points.sort((a, b) => a.n - b.n) }));
}

function panel(
  title: string,
  series: readonly Series[],
  color: (name: string) => string,
  x0: number,
  y0: number,
  fromZero: boolean,
): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return "";
  const ns = all.map((p) => p.n);
  const ys = all.map((p) => p.y);
  const nMin = Math.min(...ns);
  const nMax = Math.max(...ns, nMin * 2);
  let yMin = fromZero ? 0 : Math.min(...ys);
  let yMax = Math.max(...ys);
  const pad = (yMax - yMin) * 0.08 || 0.05;
  yMin = fromZero ? 0 : yMin - pad;
  yMax += pad;
  const w = panelWidth - margin.left - margin.right;
  const h = panelHeight - margin.top - margin.bottom;
  const sx = (n: number) => x0 + margin.left + (w * Math.log2(n / nMin)) / Math.log2(nMax / nMin);
  const sy = (v: number) => y0 + margin.top + h - (h * (v - yMin)) / (yMax - yMin);
  const out = [
    `<text x="${x0 + margin.left}" y="${y0 + 20}" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${sx(nMin)}" y1="${sy(yMin)}" x2="${sx(nMax)}" y2="${sy(yMin)}" stroke="#333"/>`,
    `<line x1="${sx(nMin)}" y1="${sy(yMin)}" x2="${sx(nMin)}" y2="${sy(yMax)}" stroke="#333"/>`,
    `<text x="${x0 + margin.left + w / 2}" y="${y0 + panelHeight - 8}" text-anchor="middle">instances N</text>`,
  ];
  for (const n of [...new Set(ns)].sort((a, b) => a - b)) {
    out.push(`<text x="${sx(n)}" y="${sy(yMin) + 16}" text-anchor="middle">${n}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = yMin + ((yMax - yMin) * i) / 4;
    const label = v.toFixed(yMax < 2 ? 2 : 0);
    out.push(`<text x="${sx(nMin) - 6}" y="${sy(v) + 4}" text-anchor="end">${label}</text>`);
    out.push(`<line x1="${sx(nMin)}" y1="${sy(v)}" x2="${sx(nMax)}" y2="${sy(v)}" stroke="#ddd"/>`);
  }
  for (const s of series) {
    const stroke = color(s.name);
    const points = s.points.map((p) => `${sx(p.n).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${points}" fill="none" stroke="${stroke}" stroke-width="2"/>`);
    for (const p of s.points) {
      out.push(`<circle cx="${sx(p.n)}" cy="${sy(p.y)}" r="3" fill="${stroke}"/>`);
    }
  }
  return out.join("\n");
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}
