// The State Service's live dashboard: a plain browser module, no framework
// and no bundler, so what is served is what is read here. It polls the
// server's own JSON (/dashboard/api/view) every POLL_MS while the tab is
// visible and redraws; the server does the aggregation, so the page stays
// small however many buckets a seed holds.

/** How often the view is read while the tab is visible: at most ~1 s behind. */
const POLL_MS = 500;
/** Where the token is kept: per tab, gone when the tab closes. */
const TOKEN_KEY = "fair-state-dashboard-token";
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const namespaceInput = $("namespace");
const seedSelect = $("seed");
const tokenInput = $("token");
const status = $("status");

// The page can be opened on one namespace: /dashboard?namespace=checkout.
const params = new URLSearchParams(location.search);
namespaceInput.value = params.get("namespace") ?? "";
if (params.get("seed") === "next") seedSelect.value = "next";
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";

/** Rates are averaged over this long: one poll's difference is too bursty to read. */
const RATE_MS = 5_000;
/** The counters of the last RATE_MS of polls, oldest first, to turn them into rates. */
let samples = [];
let timer;
/** Bumped when the namespace or seed changes, so a late answer for the old one is dropped. */
let generation = 0;

function headers() {
  const token = tokenInput.value.trim();
  return token === "" ? {} : { authorization: `Bearer ${token}` };
}

/** GETs one of the server's dashboard APIs; throws with the server's own message. */
async function api(name, query) {
  const response = await fetch(`dashboard/api/${name}?${new URLSearchParams(query)}`, {
    headers: headers(),
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

async function poll() {
  timer = undefined;
  const asked = generation;
  try {
    const view = await api("view", {
      namespace: namespaceInput.value.trim(),
      seed: seedSelect.value,
      bins: "100",
      top: "20",
    });
    if (asked !== generation) return;
    render(view);
    status.className = "";
    status.textContent = `updated ${new Date(view.nowMs).toLocaleTimeString()} · seed ${new Date(
      Number(view.seed),
    ).toISOString()}`;
  } catch (error) {
    if (asked !== generation) return;
    status.className = "error";
    status.textContent = `cannot read the view: ${error.message}`;
  } finally {
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = undefined;
  // A hidden tab costs the server nothing; it catches up when shown again.
  if (document.visibilityState === "visible") timer = setTimeout(poll, POLL_MS);
}

function render(view) {
  $("buckets").textContent = view.buckets.toLocaleString();
  $("streams").textContent = String(view.server.connectedStreams);
  $("window").textContent = `${view.windowMs / 1000} s`;
  // Rates from polls of the server's counters (the same ones /metrics shows),
  // the newest against the oldest of the last RATE_MS.
  samples.push({ nowMs: view.nowMs, ...view.server });
  while (samples.length > 2 && view.nowMs - samples[1].nowMs >= RATE_MS) samples.shift();
  const oldest = samples[0];
  if (view.nowMs > oldest.nowMs) {
    const seconds = (view.nowMs - oldest.nowMs) / 1000;
    $("ingest").textContent = rate(view.server.deltasApplied - oldest.deltasApplied, seconds);
    $("fanout").textContent = rate(view.server.bucketsBroadcast - oldest.bucketsBroadcast, seconds);
  }
  renderHeatmap(view);
  renderBuckets($("hot"), view.top);
}

function rate(delta, seconds) {
  return Math.max(0, delta / seconds).toLocaleString(undefined, { maximumFractionDigits: 1 });
}

/** One row of cells per level, one cell per bin of columns, coloured by the bin's highest probability. */
function renderHeatmap(view) {
  const { levels, columnsPerBin } = view;
  const bins = levels.reduce((most, level) => Math.max(most, level.bins.length), 0);
  $("heatmap-note").textContent =
    levels.length === 0
      ? "no buckets in this seed"
      : `${bins} cells per level, each the highest probability of ${columnsPerBin.toLocaleString()} column${columnsPerBin === 1 ? "" : "s"}`;
  const cell = 10;
  const labelWidth = 56;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute(
    "viewBox",
    `0 0 ${labelWidth + bins * cell} ${Math.max(1, levels.length) * cell * 2}`,
  );
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "heat map of bucket probabilities");
  levels.forEach((level, index) => {
    const y = index * cell * 2;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "2");
    label.setAttribute("y", String(y + cell * 1.4));
    label.textContent = `level ${level.rowId}`;
    svg.append(label);
    level.bins.forEach((prob, bin) => {
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(labelWidth + bin * cell));
      rect.setAttribute("y", String(y + cell / 2));
      rect.setAttribute("width", String(cell - 1));
      rect.setAttribute("height", String(cell));
      rect.setAttribute("fill", colour(prob));
      rect.dataset.row = String(level.rowId);
      rect.dataset.bin = String(bin);
      rect.dataset.prob = String(prob);
      const from = bin * columnsPerBin;
      rect.dataset.from = String(from);
      rect.dataset.to = String(from + columnsPerBin - 1);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `level ${level.rowId}, buckets ${from}–${from + columnsPerBin - 1}: max ${prob.toFixed(4)}`;
      rect.append(title);
      svg.append(rect);
    });
  });
  $("heatmap").replaceChildren(svg);
}

/** Pale yellow for low probabilities to dark red for 1; light grey for empty. */
function colour(prob) {
  if (prob <= 0) return "#f0f0f0";
  const p = Math.min(1, prob);
  return `hsl(${60 - 60 * p} 90% ${85 - 55 * p}%)`;
}

/** Fills a table of buckets: level, bucket, prob now, stored prob, age. */
function renderBuckets(table, buckets) {
  const rows = buckets.map((bucket) => {
    const row = document.createElement("tr");
    row.dataset.row = String(bucket.rowId);
    row.dataset.col = String(bucket.colId);
    row.dataset.prob = String(bucket.prob);
    const age = bucket.ageMs === null ? "not held" : `${(bucket.ageMs / 1000).toFixed(1)} s`;
    for (const text of [
      bucket.rowId,
      bucket.colId,
      bucket.prob.toFixed(4),
      bucket.storedProb.toFixed(4),
      age,
    ]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      row.append(td);
    }
    return row;
  });
  table.tBodies[0].replaceChildren(...rows);
}

// A change of namespace or seed starts over: old rates and answers no longer apply.
function restart() {
  generation++;
  samples = [];
  clearTimeout(timer);
  void poll();
}
namespaceInput.addEventListener("change", restart);
seedSelect.addEventListener("change", restart);
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  restart();
});
$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  restart();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && timer === undefined) void poll();
});

$("explain").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const query = { namespace: namespaceInput.value.trim() };
  for (const [key, value] of form)
    if (String(value).trim() !== "") query[key] = String(value).trim();
  const result = $("explain-result");
  const table = $("explained");
  try {
    const explanation = await api("explain", query);
    result.className = "";
    result.textContent = `window ${new Date(Number(explanation.seed)).toISOString()}: throttle probability ${(
      explanation.finalProbability * 100
    ).toFixed(2)} %`;
    renderBuckets(table, explanation.buckets);
    table.hidden = false;
  } catch (error) {
    result.className = "error";
    result.textContent = `cannot explain: ${error.message}`;
    table.hidden = true;
  }
});

void poll();
