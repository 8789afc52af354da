// The eval item browser: builds the list from the embedded JSON with DOM calls and
// textContent only, so model output is never parsed as HTML.
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
