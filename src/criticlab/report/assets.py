"""The report's stylesheet and script, inlined into every report (no network, no CDN). The
script builds the item list from the embedded JSON with DOM calls and ``textContent`` only,
so model output is never parsed as HTML."""

from __future__ import annotations

CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--zebra:#f9fafb;
--accent:#2563eb;--gold:#d97706;--gold-bg:#fef3c7;--pred:#2563eb;--pred-bg:#dbeafe;
--ok:#059669;--bad:#dc2626;--warn:#6b7280}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
header.top{background:var(--card);border-bottom:1px solid var(--line);padding:18px 32px 0}
header.top h1{margin:0;font-size:22px;font-weight:650;letter-spacing:-.01em}
header.top h1 span{color:var(--muted);font-weight:400}
header.top .sub{color:var(--muted);margin:2px 0 10px}
nav{display:flex;gap:4px;flex-wrap:wrap}
nav a{color:var(--muted);text-decoration:none;padding:8px 10px;border-bottom:2px solid
transparent;font-weight:500}
nav a:hover{color:var(--fg);border-bottom-color:var(--accent)}
main{max-width:1320px;margin:0 auto;padding:20px 32px 60px}
section{margin:0 0 22px}
h2{font-size:17px;margin:26px 0 10px;font-weight:650}
h3{font-size:14px;margin:0 0 8px;font-weight:600}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;
box-shadow:0 1px 2px rgba(0,0,0,.03)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:16px;
align-items:start}
.grid .wide{grid-column:span 2}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px;
align-items:start}
.runhead{display:flex;align-items:baseline;gap:10px;flex-wrap:wrap;margin:28px 0 10px}
.runhead h2{margin:0}
.swatch{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:6px;
vertical-align:-1px}
.meta{color:var(--muted);font-size:13px}
.meta code,.note code{font-size:12px;background:#f3f4f6;padding:1px 5px;border-radius:4px}
table.metrics{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{padding:5px 10px;text-align:right;border-bottom:1px solid
var(--line);white-space:nowrap}
table.metrics th:first-child,table.metrics td:first-child,table.metrics .left{text-align:left}
table.metrics.compare{width:auto;min-width:100%}
table.metrics thead th{font-weight:600;color:var(--muted);font-size:12px;text-transform:none;
border-bottom:2px solid var(--line);vertical-align:bottom}
table.metrics tbody tr:nth-child(even){background:var(--zebra)}
table.metrics tr.group th{background:#eef2f7;color:#374151;text-align:left;font-size:12px;
text-transform:uppercase;letter-spacing:.04em;padding-top:7px}
table.metrics tr.total td{font-weight:650;border-top:2px solid var(--line)}
table.metrics tr.parse td{color:#374151;background:#fff7ed}
table.metrics td.best{font-weight:700;color:#065f46}
table.metrics .runcol{white-space:normal;min-width:130px}
table.metrics .runcol small{display:block;font-weight:400;color:var(--muted)}
table.metrics tr.mine td{background:#eff6ff}
.delta{display:block;font-size:11px;color:var(--muted)}
.delta.up{color:var(--ok)}.delta.down{color:var(--bad)}
.badge{display:inline-block;font-size:11px;font-weight:600;padding:1px 7px;border-radius:99px;
background:#f3f4f6;color:#374151;margin-left:6px;vertical-align:1px}
.badge.pub{background:#f3e8ff;color:#6b21a8}.badge.mine{background:#dbeafe;color:#1e40af}
.na{fill:var(--muted)}
.note{color:var(--muted);font-size:12px;margin:8px 0 0}
.warnbox{background:#fffbeb;border:1px solid #fde68a;color:#92400e;padding:8px 12px;
border-radius:8px;margin:8px 0}
svg.chart{max-width:100%;height:auto;display:block}
svg .grid{stroke:#eceef1}svg .axis{stroke:#9ca3af}
svg text{font-family:inherit;font-size:11px;fill:#4b5563}
svg text.val{font-size:9.5px;fill:#374151}svg text.group{font-size:12px;fill:#111827}
svg text.axis-label{font-size:11px;fill:var(--muted)}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#374151;margin-top:6px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
.heatwrap{overflow-x:auto}
table.heatmap{border-collapse:separate;border-spacing:2px;font-size:12px;
font-variant-numeric:tabular-nums}
table.heatmap th{font-weight:600;color:#4b5563;padding:2px 6px;text-align:center}
table.heatmap th.axis{font-weight:500;color:var(--muted);font-size:11px;white-space:nowrap}
table.heatmap thead tr:first-child th.axis{text-align:center;padding-bottom:0}
table.heatmap td{width:34px;height:26px;text-align:center;border-radius:4px;
background:#f9fafb}
table.heatmap .rowtotal{background:transparent;color:var(--muted);font-weight:400}
details.config summary{cursor:pointer;color:var(--muted);font-size:12px}
details.config pre{font-size:12px;background:#f9fafb;border:1px solid var(--line);
padding:8px;border-radius:6px;overflow:auto;max-height:300px}
.toolbar{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin:0 0 10px}
.seg{display:inline-flex;border:1px solid #d1d5db;border-radius:8px;overflow:hidden}
.seg button{border:0;background:#fff;padding:6px 12px;font:inherit;cursor:pointer;
color:#374151;border-right:1px solid #e5e7eb}
.seg button:last-child{border-right:0}
.seg button.on{background:var(--accent);color:#fff}
.seg button .n{opacity:.7;margin-left:4px;font-size:12px}
select,input[type=search]{font:inherit;padding:5px 8px;border:1px solid #d1d5db;
border-radius:8px;background:#fff}
input[type=search]{min-width:220px}
.pager{display:flex;gap:8px;align-items:center;margin-left:auto}
.pager button{font:inherit;padding:5px 10px;border:1px solid #d1d5db;border-radius:8px;
background:#fff;cursor:pointer}
.pager button:disabled{opacity:.4;cursor:default}
.pager.bottom{justify-content:flex-end;margin-top:4px}
.pager[hidden]{display:none}
.count{color:var(--muted)}
.keys{display:flex;gap:16px;flex-wrap:wrap;font-size:12px;color:#374151;margin:0 0 12px}
.keys span{display:inline-flex;align-items:center;gap:6px}
.keys i{display:inline-block;width:22px;height:14px;border-radius:3px}
.k-gold{background:var(--gold-bg);border-left:4px solid var(--gold)}
.k-pred{background:var(--pred-bg);border-left:4px solid var(--pred)}
.k-both{background:linear-gradient(90deg,var(--gold-bg) 50%,var(--pred-bg) 50%);
border-left:4px solid var(--gold);box-shadow:inset -4px 0 0 var(--pred)}
article.item{background:var(--card);border:1px solid var(--line);border-radius:10px;
margin:0 0 12px;overflow:hidden}
article.item>header{display:flex;gap:8px;align-items:center;flex-wrap:wrap;
padding:8px 14px;border-bottom:1px solid var(--line);background:#fafbfc}
article.item>header .id{font-weight:650;font-family:ui-monospace,SFMono-Regular,Menlo,
Consolas,monospace;font-size:13px}
.tag{font-size:12px;color:#374151}
.tag b{font-weight:600}
.st{font-size:11px;font-weight:700;padding:1px 8px;border-radius:99px;text-transform:uppercase;
letter-spacing:.03em}
.st-hit{background:#d1fae5;color:#065f46}.st-miss{background:#fee2e2;color:#991b1b}
.st-unparsed,.st-error{background:#e5e7eb;color:#374151}.st-unlabelled{background:#f3f4f6;
color:#6b7280}
.ibody{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr)}
.ibody>div{padding:12px 14px;min-width:0}
.ibody>div+div{border-left:1px solid var(--line);background:#fcfcfd}
.q{white-space:pre-wrap;overflow-wrap:anywhere;margin:0 0 10px;font-weight:500}
ol.steps{list-style:none;margin:0;padding:0}
ol.steps li{display:grid;grid-template-columns:34px minmax(0,1fr);gap:6px;padding:6px 8px;
border-radius:6px;margin:0 0 4px;border-left:4px solid transparent}
ol.steps li .ix{color:var(--muted);font-variant-numeric:tabular-nums;font-size:12px;
padding-top:1px}
ol.steps li .tx{white-space:pre-wrap;overflow-wrap:anywhere}
ol.steps li.gold{background:var(--gold-bg);border-left-color:var(--gold)}
ol.steps li.pred{background:var(--pred-bg);border-left-color:var(--pred)}
ol.steps li.gold.pred{background:linear-gradient(90deg,var(--gold-bg) 50%,var(--pred-bg) 50%);
border-left-color:var(--gold);box-shadow:inset -4px 0 0 var(--pred)}
.chip{display:inline-block;font-size:11px;font-weight:650;padding:0 6px;border-radius:4px;
margin-right:6px;color:#fff}
.chip.gold{background:var(--gold)}.chip.pred{background:var(--pred)}
.sv{display:block;font-size:12px;color:#7f1d1d;margin-top:3px;white-space:pre-wrap}
.final{margin-top:8px;font-size:13px;color:#374151}
.crit>.inner{position:sticky;top:8px}
.crit h4{margin:0 0 6px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;
color:var(--muted)}
.crit .fb{white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px;margin:0 0 8px}
.crit pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#f3f4f6;
padding:8px;border-radius:6px;max-height:360px;overflow:auto;margin:6px 0 0}
.crit details summary{cursor:pointer;color:var(--muted);font-size:12px}
.crit .err{color:var(--bad);white-space:pre-wrap;font-size:13px}
.empty{color:var(--muted);padding:20px;text-align:center}
@media (max-width:800px){.grid .wide{grid-column:auto}.ibody{grid-template-columns:1fr}
.ibody>div+div{border-left:0;border-top:1px solid var(--line)}main{padding:16px}}
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("criticlab-items").textContent);
  var root = document.getElementById("items");
  var state = {run: 0, filter: "all", subset: "", q: "", page: 0, per: 25};
  var names = JSON.parse(document.getElementById("criticlab-subsets").textContent);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function idx(v) {
    if (v === null || v === undefined) return "none";
    return v < 0 ? "no error" : "step " + v;
  }
  function subsetName(s) { return names[s] || s; }

  function base() {
    var items = data.runs[state.run].items, out = [], q = state.q.toLowerCase();
    for (var i = 0; i < items.length; i++) {
      var it = items[i], ex = data.examples[it.x];
      if (state.subset && ex.s !== state.subset) continue;
      var hay = (String(ex.id) + "\n" + ex.q).toLowerCase();
      if (q && hay.indexOf(q) < 0) continue;
      out.push(it);
    }
    return out;
  }
  function keep(it, f) {
    if (f === "miss") return it.m === 1;
    if (f === "unparsed") return it.k === "unparsed" || it.k === "error";
    return true;
  }

  function render() {
    var pool = base(), counts = {all: pool.length, miss: 0, unparsed: 0}, list = [];
    for (var i = 0; i < pool.length; i++) {
      if (keep(pool[i], "miss")) counts.miss++;
      if (keep(pool[i], "unparsed")) counts.unparsed++;
      if (keep(pool[i], state.filter)) list.push(pool[i]);
    }
    document.querySelectorAll("#filters button").forEach(function (b) {
      b.classList.toggle("on", b.dataset.filter === state.filter);
      b.setAttribute("aria-pressed", String(b.dataset.filter === state.filter));
      b.querySelector(".n").textContent = counts[b.dataset.filter];
    });
    var pages = Math.max(1, Math.ceil(list.length / state.per));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * state.per, end = Math.min(list.length, start + state.per);
    var count = document.getElementById("item-count");
    count.dataset.count = String(list.length);
    count.textContent = list.length ? (start + 1) + "–" + end + " of " + list.length + " items"
                                    : "0 items";
    document.getElementById("page-info").textContent = "page " + (state.page + 1) + " / " + pages;
    ["prev", "prev2"].forEach(function (id) {
      document.getElementById(id).disabled = state.page === 0;
    });
    ["next", "next2"].forEach(function (id) {
      document.getElementById(id).disabled = state.page >= pages - 1;
    });
    document.querySelector(".pager.bottom").hidden = end - start < 4;
    var frag = document.createDocumentFragment();
    for (var j = start; j < end; j++) frag.appendChild(card(list[j]));
    root.replaceChildren(frag);
    if (!list.length) root.appendChild(el("div", "empty", "No items match these filters."));
  }

  function card(it) {
    var ex = data.examples[it.x], art = el("article", "item");
    art.dataset.status = it.k;
    var h = el("header");
    h.appendChild(el("span", "id", ex.id));
    if (ex.s) h.appendChild(el("span", "badge", subsetName(ex.s)));
    if (ex.by) h.appendChild(el("span", "meta", "solution by " + ex.by));
    h.appendChild(el("span", "st st-" + it.k, it.k));
    var g = el("span", "tag"); g.appendChild(el("b", "", "gold: "));
    g.appendChild(document.createTextNode(it.g !== null ? idx(it.g) : "unlabelled"));
    var p = el("span", "tag"); p.appendChild(el("b", "", "critic: "));
    var said = it.p !== null ? idx(it.p) : (it.v ? it.v + ", no step" : "undecided");
    if (it.k === "unparsed" || it.k === "error") said = it.k;
    p.appendChild(document.createTextNode(said));
    h.appendChild(g); h.appendChild(p);
    art.appendChild(h);

    var body = el("div", "ibody"), sol = el("div"), side = el("div", "crit");
    var crit = el("div", "inner");
    side.appendChild(crit);
    sol.appendChild(el("div", "q", ex.q));
    var notes = {};
    (it.sv || []).forEach(function (n) { notes[n[0]] = n; });
    var ol = el("ol", "steps");
    ex.st.forEach(function (text, i) {
      var li = el("li");
      var isGold = it.g === i, isPred = it.p === i;
      if (isGold) li.classList.add("gold");
      if (isPred) li.classList.add("pred");
      li.appendChild(el("span", "ix", i));
      var tx = el("div", "tx");
      if (isGold) tx.appendChild(el("span", "chip gold", "gold first error"));
      if (isPred) tx.appendChild(el("span", "chip pred", "critic's first error"));
      tx.appendChild(document.createTextNode(text));
      var n = notes[i];
      if (n) tx.appendChild(el("span", "sv", "critic (" + n[1] + ")" + (n[2] ? ": " + n[2] : "")));
      li.appendChild(tx);
      ol.appendChild(li);
    });
    sol.appendChild(ol);
    if (!ex.st.length) sol.appendChild(el("div", "note", "No steps (judgment-only item)."));
    if (ex.fa || ex.ra) {
      sol.appendChild(el("div", "final", (ex.fa ? "Final answer: " + ex.fa : "") +
        (ex.fa && ex.ra ? " · " : "") + (ex.ra ? "Reference: " + ex.ra : "")));
    }
    crit.appendChild(el("h4", "", "Critique" + (it.c ? " · " + it.c : "")));
    if (it.e) crit.appendChild(el("div", "err", "Error: " + it.e));
    if (it.f) crit.appendChild(el("div", "fb", it.f));
    if (it.r) {
      var d = el("details");
      d.open = it.r.length < 4000;
      d.appendChild(el("summary", "", "Raw model output"));
      d.appendChild(el("pre", "", it.r));
      crit.appendChild(d);
    }
    if (!it.f && !it.r && !it.e) crit.appendChild(el("div", "note", "No critique text."));
    body.appendChild(sol); body.appendChild(side);
    art.appendChild(body);
    return art;
  }

  function set(key, value) { state[key] = value; state.page = 0; render(); }
  document.querySelectorAll("#filters button").forEach(function (b) {
    b.addEventListener("click", function () { set("filter", b.dataset.filter); });
  });
  var runSel = document.getElementById("run-select");
  if (runSel) runSel.addEventListener("change", function () { set("run", +runSel.value); });
  var sub = document.getElementById("subset-select");
  sub.addEventListener("change", function () { set("subset", sub.value); });
  var per = document.getElementById("per-page");
  per.addEventListener("change", function () { set("per", +per.value); });
  var search = document.getElementById("item-search"), timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { set("q", search.value.trim()); }, 150);
  });
  function go(delta) {
    state.page += delta;
    render();
    document.getElementById("items-section").scrollIntoView();
  }
  ["prev", "prev2"].forEach(function (id) {
    document.getElementById(id).addEventListener("click", function () { go(-1); });
  });
  ["next", "next2"].forEach(function (id) {
    document.getElementById(id).addEventListener("click", function () { go(1); });
  });
  render();
})();
"""
