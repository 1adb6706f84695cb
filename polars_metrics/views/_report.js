"use strict";
// polars_metrics report: every number is a lookup into PM_DATA (built from the Evaluation's
// frames by polars_metrics/views/_payload.py); nothing is recomputed and nothing is fetched.
async function pmUnpack(D) {
  // the large arrays arrive as one gzip'd binary block (see views/_pack.py); every one is read
  // back as a Float64Array, null = NaN
  window.pmTimings0 = { start: performance.now() };
  if (!D.bin) return D;
  const text = atob(D.bin), raw = new Uint8Array(text.length);
  for (let k = 0; k < text.length; k++) raw[k] = text.charCodeAt(k);
  const buf = await new Response(new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
  const T = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, f64: Float64Array };
  const view = (r) => new T[r.$](buf, r.o, r.n);
  const dec = (r) => {
    if (r.$ === "f64") return view(r);
    if (r.$ === "d") { const v = view(r.v), i = view(r.i), out = new Float64Array(i.length); for (let k = 0; k < i.length; k++) out[k] = v[i[k]]; return out; }
    if (r.z === undefined) return view(r);  // integers without nulls: read as they are
    const a = view(r), out = new Float64Array(a.length), z = r.z;
    for (let k = 0; k < a.length; k++) out[k] = a[k] === z ? NaN : a[k];
    return out;
  };
  const walk = (o) => { for (const k in o) { const v = o[k]; if (v && typeof v === "object" && !ArrayBuffer.isView(v)) { if (typeof v.$ === "string") o[k] = dec(v); else walk(v); } } };
  window.pmTimings0.inflated = performance.now();
  delete D.bin; walk(D); window.pmTimings0.decoded = performance.now(); return D;
}
pmUnpack(PM_DATA).then((D) => {
const G = D.grid, NF = G.features.length, NT = G.t.length, NC = G.c.length * NT;
const METRICS = ["tp", "fp", "tn", "fn", "precision", "recall", "f1", "iou"];
const RATIOS = ["precision", "recall", "f1", "iou"];
const LABELS = G.features.concat(["None"]);
const NS = G.slices.length, NF1 = NF + 1, FLABEL = (f) => f === NF ? "all features" : G.features[f];
const $ = (id) => document.getElementById(id);
const st = { ci: 0, ti: 0, slice: 0, run: 0, sel: null, sort: "key", asc: true, limit: 200 };
st.ci = Math.floor(D.start / NT); st.ti = D.start % NT;
const cell = () => st.ci * NT + st.ti;
const run = () => D.runs[st.run];
// dense tables: entry e of a slice = features 0..NF-1 (cube) or micro, macro (overall)
const entryOf = (i) => i < NF ? ["cube", st.slice * NF + i] : ["overall", st.slice * 2 + (i - NF)];
const at = (r, i, m, k) => { const [tb, e] = entryOf(i); return r[tb][m][e * NC + k]; };
const present = (r, i) => !Number.isNaN(at(r, i, "tp", cell()));
const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const isNull = (v) => v === null || v === undefined || Number.isNaN(v);
const fmt = (v, m) => isNull(v) ? "–" : m.startsWith("delta_") ? (v > 0 ? "+" : "") + (+v).toFixed(3) : (RATIOS.includes(m) || m === "conf" ? (+v).toFixed(3) : String(v));
const dv = (v) => isNull(v) ? "" : String(v);
function el(tag, attrs, html) { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (html !== undefined) e.innerHTML = html; return e; }
function options(select, items) { select.innerHTML = items.map((x, i) => `<option value="${i}">${esc(x)}</option>`).join(""); }

// ---- controls ------------------------------------------------------------------------------
function slider(input, out, grid, key) {
  input.min = Math.min(...grid); input.max = Math.max(...grid);
  input.setAttribute("list", input.id + "-ticks");
  const dl = el("datalist", { id: input.id + "-ticks" }, grid.map((v) => `<option value="${v}">`).join(""));
  input.after(dl);
  const set = () => { input.value = grid[st[key]]; out.textContent = grid[st[key]]; };
  input.addEventListener("input", () => {
    const v = +input.value; let best = 0;
    grid.forEach((g, i) => { if (Math.abs(g - v) < Math.abs(grid[best] - v)) best = i; });
    st[key] = best; set(); update();
  });
  set();
}
slider($("conf"), $("conf-out"), G.c, "ci");
slider($("iou"), $("iou-out"), G.t, "ti");
options($("slice"), G.slices);
if (!G.by.length) $("slice-box").hidden = true;
options($("run"), D.runs.map((r) => r.name));
if (D.runs.length < 2) $("run-box").hidden = true;
$("slice").addEventListener("change", (e) => { st.slice = +e.target.value; st.sel = null; update(); });
$("run").addEventListener("change", (e) => { st.run = +e.target.value; update(); });
$("normalize").addEventListener("change", () => drawConfusion());
options($("pr-feature"), ["all features"].concat(G.features));
$("pr-feature").addEventListener("change", () => drawPR());
options($("dist-metric"), RATIOS); $("dist-metric").value = "2";
$("dist-metric").addEventListener("change", () => drawDist());
{
  const m = D.media, parts = [`${D.rows} data rows`, `${NF} features`, `${G.c.length} × ${NT} cells`,
    `examples capped at ${D.cap} per confusion cell`, `profile ${run().profile}`];
  if (run().excluded) parts.push(`${run().excluded} data rows excluded (ev.excluded)`);
  if (m) parts.push(`${m.embedded} of ${m.available} thumbnails embedded (${(m.bytes / 1e6).toFixed(2)} MB of a ${(m.cap / 1e6).toFixed(1)} MB cap)` +
    (m.drawn ? `, annotations drawn at confidence ${m.confidence}, IoU ${m.iou}: green tp, red fp, orange fn, purple misclassified` : ""));
  $("info").textContent = parts.join(" · ");
}

// ---- feature table -------------------------------------------------------------------------
const ftBody = $("feature-table").tBodies[0];
$("feature-table").tHead.innerHTML = "<tr><th>feature</th>" + METRICS.map((m) => `<th>${m}</th>`).join("") + "</tr>";
const featureRows = [];
function makeRow(label, cls) {
  const tr = el("tr", { "data-testid": "feature-row", "data-feature": label }); if (cls) tr.className = cls;
  tr.appendChild(el("td", {}, esc(label)));
  const cells = METRICS.map((m) => { const td = el("td", { "data-metric": m }); tr.appendChild(td); return td; });
  ftBody.appendChild(tr); featureRows.push({ tr, cells }); return { tr, cells };
}
G.features.forEach((f) => makeRow(f));
makeRow("all (micro)", "all"); makeRow("all (macro)", "all");
function drawFeatures() {
  const r = run(), c = cell();
  featureRows.forEach((row, i) => {
    row.tr.hidden = !present(r, i);
    if (row.tr.hidden) return;
    METRICS.forEach((m, j) => { const v = at(r, i, m, c), td = row.cells[j]; if (Object.is(td._v, v)) return; td._v = v; td.dataset.value = dv(v); td.textContent = fmt(v, m); });
  });
}

// ---- runs side by side ---------------------------------------------------------------------
function drawCompare() {
  if (D.runs.length < 2) return;
  $("compare-section").hidden = false;
  const base = D.runs[0], c = cell(), ms = ["precision", "recall", "f1"];
  $("base-run").textContent = base.name;
  let head = "<tr><th>feature</th>";
  D.runs.forEach((r, k) => ms.forEach((m) => { head += `<th>${esc(r.name)} ${m}</th>`; if (k) head += `<th>Δ ${m}</th>`; }));
  $("compare-table").tHead.innerHTML = head + "</tr>";
  const labels = G.features.concat(["all (micro)", "all (macro)"]);
  $("compare-table").tBodies[0].innerHTML = labels.map((f, i) => {
    let tds = `<td>${esc(f)}</td>`, table = i < NF ? "cube" : "overall";
    D.runs.forEach((r, k) => ms.forEach((m) => {
      const v = at(r, i, m, c); tds += `<td data-run="${esc(r.name)}" data-metric="${m}" data-value="${dv(v)}">${fmt(v, m)}</td>`;
      if (k) { const bv = at(base, i, m, c); let d = isNull(v) || isNull(bv) ? null : v - bv, ci = "", attrs = "";
        const CI = D.cmp && D.cmp.runs[r.name] && D.cmp.runs[r.name].ci[m];
        if (CI) { const q = (st.slice * (NF + 2) + i) * NC + c, lo = CI.lo[q], hi = CI.hi[q], p = CI.p[q];
          d = isNull(CI.delta[q]) ? null : CI.delta[q];
          attrs = ` data-value="${dv(CI.delta[q])}" data-lo="${dv(lo)}" data-hi="${dv(hi)}" data-p="${dv(p)}"`;
          if (!isNull(lo)) ci = ` <small class="ci${lo > 0 || hi < 0 ? " sig" : ""}">[${lo.toFixed(3)}, ${hi.toFixed(3)}] p=${p < 0.001 ? p.toExponential(0) : p.toFixed(3)}${lo > 0 || hi < 0 ? " ✱" : ""}</small>`; }
        tds += `<td data-delta="${m}"${attrs} class="${d > 0 ? "pos" : d < 0 ? "neg" : ""}">${d === null ? "–" : (d > 0 ? "+" : "") + d.toFixed(3)}${ci}</td>`; }
    }));
    return `<tr data-testid="compare-row" data-feature="${esc(f)}"${table === "overall" ? ' class="all"' : ""}>${tds}</tr>`;
  }).join("");
  if (D.cmp) $("cmp-note").textContent = ` Δ with its ${Math.round(D.cmp.level * 100)} % paired-bootstrap interval over data rows (${D.cmp.n_resamples} resamples) and two-sided p-value (cmp.deltas); ✱: the interval excludes 0.`;
  drawFlips();
}
function drawFlips() {
  const box = $("flip-box"); if (!D.cmp) { box.innerHTML = ""; return; }
  const other = D.runs[st.run > 0 ? st.run : 1].name, F = D.cmp.runs[other].flips, c = cell();
  if (!F.computed[c]) { box.innerHTML = `<p class="note" id="flip-note">Flip table not taken at this cell: it is taken at confidence ${G.c[Math.floor(D.start / NT)]} or IoU ${G.t[D.start % NT]} (the start cell's row and column); report(analysis="all") takes every cell.</p>`; return; }
  let h = `<h3>Flips: ground truths found (true positive) by ${esc(D.cmp.baseline)} and ${esc(other)} (cmp.flips)</h3><div class="scroll short"><table data-testid="flip-table"><thead><tr><th>feature</th>${F.labels.map((l) => `<th>${esc(l)}</th>`).join("")}<th>total</th></tr></thead><tbody>`;
  for (const f of [NF].concat(G.features.map((_, i) => i))) {
    const o = ((c * NS + st.slice) * NF1 + f) * 4, v = Array.from(F.counts.subarray(o, o + 4)), n = v.reduce((a, b) => a + b, 0);
    if (!n) continue;
    h += `<tr data-testid="flip-row" data-feature="${esc(FLABEL(f))}" data-counts="${v.join(",")}"${f === NF ? ' class="all"' : ""}><td>${esc(FLABEL(f))}</td>${v.map((x) => `<td>${x}</td>`).join("")}<td>${n}</td></tr>`;
  }
  box.innerHTML = h + "</tbody></table></div>";
}

// ---- confusion matrix ----------------------------------------------------------------------
const cm = $("confusion-table"), cmCells = [];
{
  const head = el("tr"); head.appendChild(el("th", { class: "row" }, "gt \\ pd"));
  LABELS.forEach((l) => head.appendChild(el("th", { class: "col", title: l }, `<span>${esc(l)}</span>`)));
  cm.appendChild(head);
  LABELS.forEach((g, gi) => {
    const tr = el("tr"); tr.appendChild(el("th", { class: "row" }, esc(g)));
    const row = LABELS.map((p, pi) => {
      const td = el("td", { "data-testid": "confusion-cell", "data-gt": g, "data-pd": p, title: `${g} → ${p}` });
      if (gi === pi && gi < NF) td.classList.add("diag");
      td.addEventListener("click", () => { st.sel = [gi, pi]; drawConfusion(); drawExamples(); });
      tr.appendChild(td); return td;
    });
    cmCells.push(row); cm.appendChild(tr);
  });
}
function confusionCounts(r) {
  const n = LABELS.length, m = new Float64Array(n * n), cf = r.confusion, k = st.slice * NC + cell();
  for (let i = cf.off[k]; i < cf.off[k + 1]; i++) m[cf.g[i] * n + cf.p[i]] = cf.n[i];
  return m;
}
function drawConfusion() {
  const n = LABELS.length, m = confusionCounts(run()), norm = $("normalize").value;
  const diff = D.runs.length > 1 && st.run > 0 ? confusionCounts(D.runs[0]) : null;
  $("cm-diff").textContent = diff ? ` Showing the difference ${run().name} − ${D.runs[0].name}: green = better (more on the diagonal, fewer elsewhere), red = worse.` : "";
  const tot = new Float64Array(n);
  for (let g = 0; g < n; g++) for (let p = 0; p < n; p++) tot[norm === "pd" ? p : g] += m[g * n + p];
  let max = 1; for (let i = 0; i < m.length; i++) max = Math.max(max, Math.abs(diff ? m[i] - diff[i] : m[i]));
  for (let g = 0; g < n; g++) for (let p = 0; p < n; p++) {
    const td = cmCells[g][p], v = m[g * n + p];
    const sel = !!st.sel && st.sel[0] === g && st.sel[1] === p;
    if (v === 0 && td._v === 0 && !diff && !td._d && !sel && !td._sel) continue;  // an empty cell stays empty
    td._v = v; td._sel = sel; td._d = !!diff;
    td.dataset.count = v;
    let shade, text;
    if (diff) { const d = v - diff[g * n + p]; td.dataset.delta = d; text = d ? (d > 0 ? "+" : "") + d : "";
      const better = g === p && g < NF ? d > 0 : d < 0, a = Math.min(1, Math.abs(d) / max);
      shade = !d ? "#fff" : better ? `rgba(30,140,70,${a})` : `rgba(200,40,40,${a})`; }
    else if (norm) { const t = tot[norm === "pd" ? p : g], share = t ? v / t : 0; text = v ? Math.round(share * 100) : ""; shade = `rgba(30,90,170,${share})`; }
    else { text = v ? v : ""; shade = `rgba(30,90,170,${v ? 0.08 + 0.92 * Math.sqrt(v / max) : 0})`; }
    td.textContent = text; td.style.background = shade;
    td.style.color = (diff ? Math.abs(v - diff[g * n + p]) / max : norm ? (tot[norm === "pd" ? p : g] ? v / tot[norm === "pd" ? p : g] : 0) : Math.sqrt(v / max)) > 0.55 ? "#fff" : "#1d2330";
    td.classList.toggle("sel", !!st.sel && st.sel[0] === g && st.sel[1] === p);
  }
}

// ---- examples ------------------------------------------------------------------------------
function drawExamples() {
  const box = $("examples");
  if (!st.sel) { box.innerHTML = '<p class="note">Click a confusion cell to list its examples.</p>'; return; }
  const [g, p] = st.sel, n = LABELS.length, c = cell(), r = run();
  const total = confusionCounts(r)[g * n + p];
  const ex = r.examples, [a, b] = ex.index[`${g},${p}`] || [0, 0], list = [];
  for (let k = a; k < b; k++) {
    if (!((D.masks[ex.mask[k]][st.ci] >> st.ti) & 1) || D_rows_slice[ex.row[k]] !== st.slice) continue;
    list.push([ex.row[k], ex.gt[k], ex.pd[k], ex.conf[k], ex.iou[k]]);
    if (list.length >= D.cap) break;
  }
  const thumbs = Object.keys(D.thumbs).length > 0, texts = !!D.text && list.some((e) => D.text.rows[e[0]] !== undefined);
  const oc = g === p ? "tp" : g === NF ? "fp" : p === NF ? "fn" : "mis";
  let html = `<h3 data-testid="examples-title" data-total="${total}" data-shown="${list.length}">${esc(LABELS[g])} → ${esc(LABELS[p])}: ${total} at confidence ${G.c[st.ci]}, IoU ${G.t[st.ti]}` +
    (list.length < total ? ` (showing ${list.length})` : "") + "</h3>";
  html += `<div class="scroll"><table data-testid="examples-table"><thead><tr>${thumbs ? "<th>image</th>" : ""}<th>data row</th><th>gt id</th><th>gt feature</th><th>pd id</th><th>pd feature</th><th>confidence</th><th>IoU</th>${texts ? "<th>text (gold underlined, predicted shaded)</th>" : ""}</tr></thead><tbody>`;
  for (const e of list) {
    const img = D.thumbs[e[0]];
    html += `<tr data-testid="examples-row" data-key="${esc(D_keys[e[0]])}" data-gt-id="${dv(e[1])}" data-pd-id="${dv(e[2])}">` +
      (thumbs ? `<td>${img ? `<img src="${img}" alt="">` : ""}</td>` : "") +
      `<td>${esc(D_keys[e[0]])}</td><td>${isNull(e[1]) ? "–" : esc(e[1])}</td><td>${g < NF ? esc(LABELS[g]) : "None"}</td>` +
      `<td>${isNull(e[2]) ? "–" : esc(e[2])}</td><td>${p < NF ? esc(LABELS[p]) : "None"}</td><td data-value="${dv(e[3])}">${fmt(e[3], "conf")}</td><td data-value="${dv(e[4])}">${fmt(e[4], "iou")}</td>` +
      (texts ? `<td class="text ${oc}">${snippet(e[0], e[1], e[2])}</td>` : "") + "</tr>";
  }
  box.innerHTML = html + "</tbody></table></div>";
}

// the text around an example's gold (g) and predicted (p) spans, each character marked by the
// spans covering it
function snippet(row, gid, pid) {
  const text = D.text.rows[row]; if (text === undefined) return "";
  const gs = isNull(gid) ? null : D.text.g[`${row}:${gid}`], ps = isNull(pid) ? null : D.text.p[`${row}:${pid}`];
  const spans = [gs, ps].filter((x) => x);
  if (!spans.length) return esc(text.slice(0, 120));
  const a = Math.max(0, Math.min(...spans.map((x) => x[0])) - 60), b = Math.min(text.length, Math.max(...spans.map((x) => x[1])) + 60);
  const cls = (i) => (gs && i >= gs[0] && i < gs[1] ? "g" : "") + (ps && i >= ps[0] && i < ps[1] ? "p" : "");
  let out = a > 0 ? "…" : "", run = "", cur = cls(a);
  const flush = () => { out += cur ? `<mark class="${cur}">${esc(run)}</mark>` : esc(run); run = ""; };
  for (let i = a; i < b; i++) { const k = cls(i); if (k !== cur) { flush(); cur = k; } run += text[i]; }
  flush(); return out + (b < text.length ? "…" : "");
}

// ---- precision-recall ----------------------------------------------------------------------
function curve(run, i) {
  const pts = [], nn = (v) => Number.isNaN(v) ? null : v;
  for (let ci = 0; ci < G.c.length; ci++) {
    const k = ci * NT + st.ti;
    pts.push({ ci, p: nn(at(run, i, "precision", k)), r: nn(at(run, i, "recall", k)), f: nn(at(run, i, "f1", k)) });
  }
  let best = null; for (const q of pts) if (q.f !== null && (best === null || q.f > best.f)) best = q;
  return { pts, best };
}
function drawPR() {
  const W = 420, H = 320, L = 40, B = 30, r = run(), sel = +$("pr-feature").value;
  const x = (v) => L + v * (W - L - 10), y = (v) => H - B - v * (H - B - 10);
  const series = [];
  if (sel === 0) G.features.forEach((f, i) => { if (present(r, i)) series.push({ name: f, i, faint: true }); });
  else if (present(r, sel - 1)) series.push({ name: G.features[sel - 1], i: sel - 1 });
  if (present(r, NF)) series.push({ name: "all (micro)", i: NF, micro: true });
  let svg = `<svg width="${W}" height="${H}" role="img" aria-label="precision-recall curves">`;
  for (let v = 0; v <= 1.0001; v += 0.2) svg += `<line x1="${x(0)}" x2="${x(1)}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${L - 4}" y="${y(v) + 3}" font-size="10" text-anchor="end">${v.toFixed(1)}</text><text x="${x(v)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${v.toFixed(1)}</text>`;
  svg += `<text x="${(W + L) / 2}" y="${H - 2}" font-size="11" text-anchor="middle">recall</text><text x="10" y="${H / 2}" font-size="11" transform="rotate(-90 10 ${H / 2})" text-anchor="middle">precision</text>`;
  for (const s of series) {
    const { pts, best } = curve(r, s.i), ok = pts.filter((q) => q.p !== null && q.r !== null);
    const color = s.micro ? "#111" : s.faint ? "rgba(60,110,190,0.35)" : "#1f6fd1";
    svg += `<polyline fill="none" stroke="${color}" stroke-width="${s.micro ? 2.2 : 1.4}" points="${ok.map((q) => `${x(q.r)},${y(q.p)}`).join(" ")}"><title>${esc(s.name)}</title></polyline>`;
    if (!s.faint || series.length < 12) {
      if (best && best.p !== null && best.r !== null) svg += `<path data-testid="pr-best" data-feature="${esc(s.name)}" data-confidence="${G.c[best.ci]}" data-f1="${best.f}" d="M${x(best.r)} ${y(best.p) - 6}l6 6l-6 6l-6 -6z" fill="${s.micro ? "#111" : "#e07b00"}"><title>${esc(s.name)} best F1 ${best.f.toFixed(3)} at confidence ${G.c[best.ci]}</title></path>`;
      const cur = pts[st.ci];
      if (cur.p !== null && cur.r !== null) svg += `<circle data-testid="pr-current" data-feature="${esc(s.name)}" data-precision="${cur.p}" data-recall="${cur.r}" cx="${x(cur.r)}" cy="${y(cur.p)}" r="5" fill="none" stroke="#c2185b" stroke-width="2"/>`;
    }
  }
  $("pr-curve").innerHTML = svg + "</svg>";
}

// ---- distributions -------------------------------------------------------------------------
function bars(counts, caption, w = 150, h = 60) {
  const max = Math.max(1, ...counts), bw = w / counts.length;
  let s = `<figure><svg width="${w}" height="${h}">`;
  counts.forEach((v, i) => { const bh = (h - 12) * v / max; s += `<rect x="${i * bw + 1}" y="${h - 12 - bh}" width="${bw - 2}" height="${bh}" fill="#3b7dd8"><title>[${(i / counts.length).toFixed(1)}, ${((i + 1) / counts.length).toFixed(1)}${i === counts.length - 1 ? "]" : ")"}: ${v}</title></rect>`; });
  s += `<text x="0" y="${h - 1}" font-size="9">0</text><text x="${w}" y="${h - 1}" font-size="9" text-anchor="end">1</text></svg><figcaption>${esc(caption)}</figcaption></figure>`;
  return s;
}
function drawDist() {
  const h = run().hist, mi = +$("dist-metric").value;
  const counts = (group) => { const o = ((cell() * h.groups + group) * RATIOS.length + mi) * 10; return Array.from(h.counts.subarray(o, o + 10)); };
  $("dist-note").textContent = "data rows per bin at the current cell" + (h.per_class ? "" : "; per-class histograms were not embedded (report(class_distributions=True) embeds them)");
  $("dist-slices").innerHTML = G.slices.map((sl, i) => { const c = counts(i), n = c.reduce((a, b) => a + b, 0); return n ? bars(c, `${G.by.length ? sl : "all data rows"} (n=${n})`) : ""; }).join("");
  $("dist-classes-title").hidden = !h.per_class;
  $("dist-classes").innerHTML = h.per_class ? G.features.map((f, i) => { const c = counts(G.slices.length + i); return c.some((v) => v) ? bars(c, f, 110, 44) : ""; }).join("") : "";
}

// ---- gallery -------------------------------------------------------------------------------
const D_keys = D.keys, D_rows_slice = D.slice, NR = D_keys.length;
const KEY_RANK = new Float64Array(NR), SLICE_RANK = new Float64Array(NR);  // sort keys as numbers
Array.from(D_keys.keys()).sort((a, b) => (D_keys[a] < D_keys[b] ? -1 : D_keys[a] > D_keys[b] ? 1 : a - b)).forEach((r, i) => { KEY_RANK[r] = i; });
for (let r = 0; r < NR; r++) SLICE_RANK[r] = D_rows_slice[r] * NR + KEY_RANK[r];
const flt = { metric: "f1", lo: "", hi: "", slice: "", feature: "" };
$("gallery-filters").innerHTML = `filter: <select id="f-metric">${METRICS.map((m) => `<option>${m}</option>`).join("")}</select> from <input id="f-lo" size="4" data-testid="filter-min"> to <input id="f-hi" size="4" data-testid="filter-max">` +
  (G.by.length ? ` · slice <select id="f-slice" data-testid="filter-slice"><option value="">any</option>${G.slices.map((s, i) => `<option value="${i}">${esc(s)}</option>`).join("")}</select>` : "") +
  ` · feature present <select id="f-feature" data-testid="filter-feature"><option value="">any</option>${G.features.map((f, i) => `<option value="${i}">${esc(f)}</option>`).join("")}</select>`;
["f-metric", "f-lo", "f-hi", "f-slice", "f-feature"].forEach((id) => { const e = $(id); if (e) e.addEventListener("input", () => { flt[id.slice(2)] = e.value; st.limit = 200; drawGallery(); }); });
$("f-metric").value = "f1";
const thumbs = Object.keys(D.thumbs).length > 0;
const DELTAS = D.runs.length > 1 ? ["delta_f1", "delta_recall", "delta_precision"] : [];
if (DELTAS.length) D.runs.forEach((r, k) => {  // per data row: (selected run, or the second when the baseline is selected) - baseline
  const o = D.runs[k > 0 ? k : 1].gallery, b = D.runs[0].gallery;
  for (const dm of DELTAS) { const m = dm.slice(6), a = new Float64Array(NR * NC); for (let i = 0; i < a.length; i++) a[i] = o[m][i] - b[m][i]; r.gallery[dm] = a; }
});
const cols = ["key"].concat(G.by.length ? ["slice"] : [], METRICS, DELTAS);
$("data-row-table").tHead.innerHTML = "<tr>" + (thumbs ? "<th>image</th>" : "") + cols.map((c) => `<th data-sort="${c}">${c === "key" ? "data row" : c}</th>`).join("") + "</tr>";
$("data-row-table").tHead.addEventListener("click", (e) => {
  const th = e.target.closest("th[data-sort]"); if (!th) return;
  const k = th.dataset.sort; st.asc = st.sort === k ? !st.asc : k === "key" || k === "slice"; st.sort = k;
  const t0 = performance.now(); drawGallery(); window.pmLastRedrawMs = performance.now() - t0;
});
$("gallery-more").addEventListener("click", () => { st.limit += 500; drawGallery(); });
function drawGallery() {
  const GAL = run().gallery, ck = cell(), body = $("data-row-table").tBodies[0];
  for (const th of $("data-row-table").tHead.rows[0].cells) { th.classList.toggle("sorted", th.dataset.sort === st.sort); th.classList.toggle("asc", st.asc);
    if (th.dataset.sort && th.dataset.sort.startsWith("delta_")) th.textContent = `Δ ${th.dataset.sort.slice(6)} (${D.runs[st.run > 0 ? st.run : 1].name} − ${D.runs[0].name})`; }
  const val = (r, k) => { if (k === "key") return D_keys[r]; if (k === "slice") return G.slices[D_rows_slice[r]]; const v = GAL[k][r * NC + ck]; return Number.isNaN(v) ? null : v; };
  const lo = flt.lo === "" ? -Infinity : +flt.lo, hi = flt.hi === "" ? Infinity : +flt.hi;
  let rows = [];
  for (let r = 0; r < NR; r++) {
    if (Number.isNaN(GAL.tp[r * NC + ck])) continue;
    if (flt.slice !== "" && D_rows_slice[r] !== +flt.slice) continue;
    if (flt.feature !== "" && !D.features[r].includes(+flt.feature)) continue;
    if (flt.lo !== "" || flt.hi !== "") { const v = val(r, flt.metric); if (v === null || v < lo || v > hi) continue; }
    rows.push(r);
  }
  const k = st.sort, sign = st.asc ? 1 : -1;
  const sv = k === "key" ? KEY_RANK : k === "slice" ? SLICE_RANK : null, col = GAL[k];
  const sortVal = new Float64Array(NR);
  for (const r of rows) sortVal[r] = sv ? sv[r] : col[r * NC + ck];
  rows.sort((a, b) => { const va = sortVal[a], vb = sortVal[b]; if (va === vb || (va !== va && vb !== vb)) return a - b; if (va !== va) return 1; if (vb !== vb) return -1; return (va < vb ? -1 : 1) * sign; });
  const shown = rows.slice(0, st.limit);
  body.innerHTML = shown.map((r) => `<tr data-testid="data-row" data-key="${esc(D_keys[r])}">` + (thumbs ? `<td>${D.thumbs[r] ? `<img src="${D.thumbs[r]}" alt="">` : ""}</td>` : "") +
    cols.map((c) => { const v = val(r, c); return c === "key" || c === "slice" ? `<td>${esc(v)}</td>` : `<td data-metric="${c}" data-value="${dv(v)}">${fmt(v, c)}</td>`; }).join("") + "</tr>").join("");
  $("gallery-note").textContent = `${rows.length} of ${NR} data rows match; showing ${shown.length}.`;
  $("gallery-more").hidden = shown.length >= rows.length;
}

// ---- analysis: error types, calibration, label-error queues (views/_analysis.py) -------------
const ECOL = ["#7b3fb5", "#e08a00", "#c2185b", "#5f7d95", "#d33", "#1f6fd1"];
const AN = () => run().analysis;
options($("cal-feature"), G.features.concat(["all (micro)"])); $("cal-feature").value = String(NF);
$("cal-feature").addEventListener("change", () => drawCalibration());
function drawErrors() {
  const A = AN(), box = $("errors-section"); box.hidden = !A; if (!A) return;
  const E = A.errors, ok = !!E.counts && G.t[st.ti] >= E.bg;
  $("err-note").textContent = E.note ? `(${E.note})` : "";
  $("err-legend").innerHTML = E.types.map((t, j) => `<span><i style="background:${ECOL[j]}"></i>${t}</span>`).join("");
  if (!ok) { $("err-bars").innerHTML = ""; $("err-dap").innerHTML = ""; return; }
  const k = cell(), rows = [];
  if (!E.computed[k]) { $("err-dap").innerHTML = ""; $("err-bars").innerHTML = `<p class="note" id="err-not-taken">Error types not taken at this cell: report(analysis=True) takes them at confidence ${G.c[Math.floor(D.start / NT)]} or IoU ${G.t[D.start % NT]} (the start cell's row and column); report(analysis="all") takes every cell.</p>`; return; }
  for (let f = 0; f < NF1; f++) {
    const o = ((k * NS + st.slice) * NF1 + f) * 6, c = Array.from(E.counts.subarray(o, o + 6));
    if (c.some((v) => Number.isNaN(v))) continue;
    rows.push({ f, c, n: c.reduce((a, b) => a + b, 0) });
  }
  rows.sort((a, b) => (b.f === NF) - (a.f === NF) || b.n - a.n || a.f - b.f);
  const W = 360, maxF = Math.max(1, ...rows.filter((r) => r.f !== NF).map((r) => r.n));
  $("err-bars").innerHTML = rows.map((r) => {
    const scale = (r.f === NF ? W / Math.max(1, r.n) : W / maxF); let x = 0, rects = "";
    r.c.forEach((v, j) => { if (v) rects += `<rect x="${x}" y="1" width="${v * scale}" height="12" fill="${ECOL[j]}"><title>${esc(FLABEL(r.f))}: ${E.types[j]} ${v}</title></rect>`; x += v * scale; });
    let dap = "";
    if (E.dap) { const o = (k * NF1 + r.f) * 6; dap = ` data-dap="${Array.from(E.dap.subarray(o, o + 6)).map(dv).join(",")}"`; }
    return `<div class="erow" data-testid="error-row" data-feature="${esc(FLABEL(r.f))}" data-counts="${r.c.join(",")}"${dap}><span class="elab">${esc(FLABEL(r.f))}</span><svg width="${W}" height="14">${rects}</svg> <span class="etot">${r.n}</span></div>`;
  }).join("") || '<p class="note">no errors at this cell</p>';
  if (!E.dap) { $("err-dap").innerHTML = ""; return; }
  const o = (k * NF1 + NF) * 6, d = Array.from(E.dap.subarray(o, o + 6)), mx = Math.max(1e-9, ...d.filter((v) => !Number.isNaN(v)));
  $("err-dap").innerHTML = `<h3>ΔAP at IoU ${G.t[st.ti]}: AP gained by fixing each type (mean over features)</h3>` + d.map((v, j) =>
    `<div class="erow" data-testid="dap-bar" data-type="${E.types[j]}" data-value="${dv(v)}"><span class="elab">${E.types[j]}</span><svg width="${W}" height="14"><rect width="${Number.isNaN(v) ? 0 : Math.max(0, v) / mx * W}" height="12" y="1" fill="${ECOL[j]}"/></svg> <span class="etot">${isNull(v) ? "–" : v.toFixed(4)}</span></div>`).join("");
}
function drawCalibration() {
  const A = AN(), box = $("cal-section"); box.hidden = !A; if (!A) return;
  const C = A.calibration; $("cal-note").textContent = C.note ? `(${C.note})` : "";
  $("cal-table").hidden = !!C.note;
  if (C.note) { $("cal-diagram").innerHTML = ""; $("cal-table").tBodies[0].innerHTML = ""; return; }
  const base = (st.ti * NS + st.slice) * NF1, f = +$("cal-feature").value, e = base + f, B = C.bins;
  const W = 300, H = 280, L = 36, BT = 28, x = (v) => L + v * (W - L - 8), y = (v) => H - BT - v * (H - BT - 30);
  let svg = `<svg width="${W}" height="${H}" role="img" aria-label="reliability diagram">`;
  for (let v = 0; v <= 1.0001; v += 0.2) svg += `<line x1="${x(0)}" x2="${x(1)}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${L - 4}" y="${y(v) + 3}" font-size="10" text-anchor="end">${v.toFixed(1)}</text><text x="${x(v)}" y="${H - BT + 13}" font-size="10" text-anchor="middle">${v.toFixed(1)}</text>`;
  svg += `<text x="${(W + L) / 2}" y="${H - 2}" font-size="11" text-anchor="middle">confidence</text><text x="10" y="${(H - BT) / 2}" font-size="11" transform="rotate(-90 10 ${(H - BT) / 2})" text-anchor="middle">accuracy</text>`;
  for (let b = 0; b < B; b++) {
    const i = e * B + b, n = C.count[i], acc = C.accuracy[i], lo = C.lower[i], hi = C.upper[i], cf = C.confidence[i];
    if (Number.isNaN(lo) || !n) continue;
    svg += `<rect data-testid="cal-bin" data-bin="${b}" data-count="${n}" data-accuracy="${dv(acc)}" data-confidence="${dv(cf)}" x="${x(lo) + 1}" width="${Math.max(1, x(hi) - x(lo) - 2)}" y="${y(acc)}" height="${y(0) - y(acc)}" fill="rgba(59,125,216,0.75)"><title>[${lo.toFixed(2)}, ${hi.toFixed(2)}]: ${n} predictions, accuracy ${acc.toFixed(3)}, mean confidence ${cf.toFixed(3)}</title></rect>`;
    svg += `<circle cx="${x(cf)}" cy="${y(acc)}" r="2.5" fill="#111"/><text font-size="8" transform="translate(${(x(lo) + x(hi)) / 2 + 3} ${y(acc) - 3}) rotate(-90)">${n}</text>`;
  }
  svg += `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#c2185b" stroke-dasharray="4 3"/></svg>`;
  const ece = C.ece[e], mce = C.mce[e];
  $("cal-diagram").innerHTML = svg + `<p data-testid="cal-summary" data-feature="${f === NF ? "all (micro)" : esc(G.features[f])}" data-ece="${dv(ece)}" data-mce="${dv(mce)}" data-count="${dv(C.n[e])}">` +
    (Number.isNaN(ece) ? "no predictions" : `ECE ${ece.toFixed(4)} · MCE ${mce.toFixed(4)} · ${C.n[e]} predictions`) + " at IoU " + G.t[st.ti] + " (bars: accuracy per bin, ● mean confidence, dashed: perfect calibration)</p>";
  let rows = "";
  for (const g of [NF].concat(G.features.map((_, i) => i))) { const q = base + g; if (Number.isNaN(C.ece[q])) continue;
    rows += `<tr data-testid="cal-row" data-feature="${g === NF ? "all (micro)" : esc(G.features[g])}"${g === NF ? ' class="all"' : ""}><td>${g === NF ? "all (micro)" : esc(G.features[g])}</td><td data-col="count" data-value="${C.n[q]}">${C.n[q]}</td><td data-col="ece" data-value="${C.ece[q]}">${C.ece[q].toFixed(4)}</td><td data-col="mce" data-value="${C.mce[q]}">${C.mce[q].toFixed(4)}</td></tr>`; }
  $("cal-table").tBodies[0].innerHTML = rows;
}
function queueTable(Q, id, noteId, cols, extra) {
  const k = cell(), tbl = $(id), A = AN().queues;
  if (Q.note) { tbl.innerHTML = ""; $(noteId).textContent = `(${Q.note})`; return; }
  if (!Q.computed[k]) { tbl.innerHTML = ""; $(noteId).textContent = `Not taken at this cell: report(analysis=True) takes the queues at the start cell (confidence ${G.c[Math.floor(D.start / NT)]}, IoU ${G.t[D.start % NT]}` + (id === "sus-table" ? `, with IoU ≥ ${AN().errors.bg}` : "") + "); report(analysis=\"all\") takes every cell."; return; }
  const a = Q.off[k * NS + st.slice], b = Q.off[k * NS + st.slice + 1], thumbs = Object.keys(D.thumbs).length > 0;
  $(noteId).textContent = `${b - a} shown (at most ${A.k} per cell and slice).`;
  let h = "<thead><tr>" + (thumbs ? "<th>image</th>" : "") + "<th>#</th><th>data row</th>" + cols.map((c) => `<th>${c[1]}</th>`).join("") + "</tr></thead><tbody>";
  for (let i = a; i < b; i++) {
    const r = Q.row[i], img = D.thumbs[r];
    h += `<tr data-testid="${extra}-row" data-key="${esc(D_keys[r])}">` + (thumbs ? `<td>${img ? `<img src="${img}" alt="">` : ""}</td>` : "") + `<td>${i - a + 1}</td><td>${esc(D_keys[r])}</td>` +
      cols.map(([c, , f]) => { const v = Q[c][i]; const [text, val] = f(v); return `<td data-col="${c}" data-value="${esc(val)}">${text}</td>`; }).join("") + "</tr>";
  }
  tbl.innerHTML = h + "</tbody>";
}
const num = (v) => [isNull(v) ? "–" : (+v).toFixed(3), dv(v)], id_ = (v) => [isNull(v) ? "–" : esc(v), dv(v)];
const feat = (v) => [v < NF ? esc(G.features[v]) : "–", v < NF ? G.features[v] : ""];
function drawQueues() {
  const A = AN(), box = $("queue-section"); box.hidden = !A; if (!A) return;
  const Q = A.queues;
  queueTable(Q.suspects, "sus-table", "sus-note", [["reason", "reason", (v) => [esc(Q.reasons[v]), Q.reasons[v]]], ["score", "score", num],
    ["gt", "gt id", id_], ["gf", "gt feature", feat], ["pd", "pd id", id_], ["pf", "pd feature", feat], ["conf", "confidence", num], ["iou", "IoU", num]], "suspect");
  queueTable(Q.uncertain, "unc-table", "unc-note", [["pd", "pd id", id_], ["pf", "pd feature", feat], ["conf", "confidence", num], ["gt", "gt id", id_],
    ["iou", "IoU", num], ["tp", "tp", (v) => [isNull(v) ? "–" : v ? "yes" : "no", isNull(v) ? "" : v ? "true" : "false"]], ["margin", "margin", (v) => [isNull(v) ? "–" : (+v).toPrecision(3), dv(v)]]], "uncertain");
}

// ---- one redraw per control change ---------------------------------------------------------
function update() {
  const t0 = performance.now();
  const tm = {};
  for (const f of [drawFeatures, drawCompare, drawConfusion, drawExamples, drawErrors, drawCalibration, drawQueues, drawPR, drawDist, drawGallery]) {
    const t1 = performance.now(); f(); tm[f.name] = performance.now() - t1;
  }
  window.pmTimings = tm;
  window.pmLastRedrawMs = performance.now() - t0;
}
update();
window.pmReadyMs = performance.now();
window.pmReady = true;
}).catch((e) => { document.body.insertAdjacentHTML("afterbegin", `<p class="note">This report needs a browser with DecompressionStream (Chromium 80+, Firefox 113+, Safari 16.4+): ${String(e)}</p>`); throw e; });
