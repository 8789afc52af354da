// The refine and select browsers: fill each section.browser from its embedded JSON with DOM
// calls and textContent only, so model output is never parsed as HTML.
(function () {
  "use strict";
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function mark(ok) {
    return el("span", "mark " + (ok ? "ok" : "bad"), ok ? "✓ right" : "✗ wrong");
  }
  function tokens(n) { return n.toLocaleString("en-US") + " tokens"; }
  function answer(a) { return a === null || a === undefined || a === "" ? "(none)" : a; }
  var TR = {"c->c": "kept right (c→c)", "c->i": "broken (c→i)", "i->c": "fixed (i→c)",
            "i->i": "still wrong (i→i)"};

  function steps(list, first, notes) {
    var ol = el("ol", "steps"), byIndex = {};
    (notes || []).forEach(function (n) { byIndex[n[0]] = n; });
    list.forEach(function (text, i) {
      var li = el("li"), tx = el("div", "tx");
      if (first === i) {
        li.classList.add("pred");
        tx.appendChild(el("span", "chip pred", "critic's first error"));
      }
      li.appendChild(el("span", "ix", i));
      tx.appendChild(document.createTextNode(text));
      var n = byIndex[i];
      if (n) tx.appendChild(el("span", "sv", "critic (" + n[1] + ")" + (n[2] ? ": " + n[2] : "")));
      li.appendChild(tx);
      ol.appendChild(li);
    });
    return ol;
  }
  function said(c) {
    if (!c) return "not critiqued";
    if (!c.p) return "critique unparsed";
    if (c.fe !== null && c.fe !== undefined) return "critic: first error at step " + c.fe;
    return c.v === "incorrect" ? "critic: wrong, no step named" : "critic: accepts";
  }

  function refineCard(it, p) {
    var art = el("article", "item traj"), h = el("header"), last = it.r[it.r.length - 1];
    art.dataset.t = it.t;
    h.appendChild(el("span", "id", p.id));
    h.appendChild(el("span", "tr tr-" + it.t.replace("->", ""), TR[it.t] || it.t));
    var fin = el("span", "tag"); fin.appendChild(el("b", "", "final: "));
    fin.appendChild(document.createTextNode(answer(last.fa)));
    fin.appendChild(mark(last.ok));
    h.appendChild(fin);
    var ref = el("span", "tag"); ref.appendChild(el("b", "", "reference: "));
    ref.appendChild(document.createTextNode(answer(p.ra)));
    h.appendChild(ref);
    h.appendChild(el("span", "meta", it.r.length + (it.r.length === 1 ? " round · " : " rounds · ")
                                     + tokens(it.tok)));
    art.appendChild(h);
    var qw = el("div", "qwrap"); qw.appendChild(el("div", "q", p.q)); art.appendChild(qw);
    it.r.forEach(function (r, i) {
      var d = el("details", "round"), s = el("summary"), c = r.c;
      d.open = true;
      d.dataset.round = String(i);
      s.appendChild(el("span", "rn", "Round " + i + " · " + r.k));
      s.appendChild(el("span", "tag", "answer: " + answer(r.fa)));
      s.appendChild(mark(r.ok));
      s.appendChild(el("span", "meta", said(c) + " · " + tokens(r.tok)));
      d.appendChild(s);
      var body = el("div", "ibody"), sol = el("div"), side = el("div", "crit");
      var inner = el("div", "inner");
      sol.appendChild(steps(r.st, c ? c.fe : null, c ? c.sv : null));
      if (!r.st.length) sol.appendChild(el("div", "note", "No steps."));
      sol.appendChild(el("div", "final",
                         "Answer: " + answer(r.fa) + " · Reference: " + answer(p.ra)));
      inner.appendChild(el("h4", "", "Critique" + (c && c.n ? " · " + c.n : "")));
      if (c && c.f) inner.appendChild(el("div", "fb", c.f));
      else inner.appendChild(el("div", "note", c ? "No feedback text." : "No critique."));
      side.appendChild(inner);
      body.appendChild(sol); body.appendChild(side);
      d.appendChild(body);
      art.appendChild(d);
    });
    return art;
  }

  function selectCard(it, p) {
    var art = el("article", "item sel"), h = el("header");
    h.appendChild(el("span", "id", p.id));
    var ch = el("span", "tag"); ch.appendChild(el("b", "", "chosen: "));
    ch.appendChild(document.createTextNode(answer(it.a))); ch.appendChild(mark(it.ok));
    h.appendChild(ch);
    var mj = el("span", "tag"); mj.appendChild(el("b", "", "majority: "));
    mj.appendChild(document.createTextNode(answer(it.m))); mj.appendChild(mark(it.mok));
    h.appendChild(mj);
    var ref = el("span", "tag"); ref.appendChild(el("b", "", "reference: "));
    ref.appendChild(document.createTextNode(answer(p.ra)));
    h.appendChild(ref);
    if (it.d) h.appendChild(el("span", "badge", "not the majority"));
    if (it.fb) h.appendChild(el("span", "badge", "fell back to majority"));
    art.appendChild(h);
    var body = el("div", "ibody"), left = el("div"), right = el("div", "crit");
    left.appendChild(el("div", "q", p.q));
    var t = el("table", "votes"), hr = el("tr");
    ["answer", "votes", "", ""].forEach(function (x) { hr.appendChild(el("th", "", x)); });
    t.appendChild(hr);
    it.v.forEach(function (v) {
      var tr = el("tr", v[3] ? "chosen" : "");
      tr.appendChild(el("td", "", v[0]));
      tr.appendChild(el("td", "", Math.round(v[1] * 1000) / 1000));
      var okc = el("td"); okc.appendChild(mark(v[2])); tr.appendChild(okc);
      tr.appendChild(el("td", "", [v[3] ? "◀ chosen" : "", v[4] ? "majority" : ""]
        .filter(Boolean).join(" · ")));
      t.appendChild(tr);
    });
    if (it.v.length) left.appendChild(t);
    else left.appendChild(el("div", "note", "No votes: no sample gave an answer."));
    right.appendChild(el("h4", "", "Samples (" + it.s.length + ")"));
    var ol = el("ol", "samples");
    it.s.forEach(function (s) {
      var li = el("li"), d = el("details"), sm = el("summary");
      li.appendChild(document.createTextNode("answer: " + answer(s.fa)));
      li.appendChild(mark(s.ok));
      sm.textContent = s.st.length + (s.st.length === 1 ? " step" : " steps");
      d.appendChild(sm); d.appendChild(steps(s.st, null, null));
      li.appendChild(d);
      ol.appendChild(li);
    });
    right.appendChild(ol);
    body.appendChild(left); body.appendChild(right);
    art.appendChild(body);
    return art;
  }

  var KINDS = {
    refine: {card: refineCard, keep: function (it, f) { return f === "all" || it.t === f; }},
    select: {card: selectCard, keep: function (it, f) {
      if (f === "right") return it.ok;
      if (f === "wrong") return !it.ok;
      if (f === "differs") return it.d;
      if (f === "fallback") return it.fb;
      return true;
    }}
  };

  function setup(section) {
    var kind = KINDS[section.dataset.kind];
    var source = document.getElementById(section.id + "-data");
    if (!kind || !source) return;
    var data = JSON.parse(source.textContent);
    var state = {run: 0, filter: "all", q: "", page: 0, per: 25};
    var list = document.getElementById(section.id + "-items");
    var count = document.getElementById(section.id + "-count");
    var buttons = section.querySelectorAll(".filters button");
    function one(sel) { return section.querySelector(sel); }

    function render() {
      var items = data.runs[state.run].items, q = state.q.toLowerCase(), counts = {}, shown = [];
      buttons.forEach(function (b) { counts[b.dataset.filter] = 0; });
      items.forEach(function (it) {
        var p = data.problems[it.x];
        if (q && (String(p.id) + "\n" + p.q).toLowerCase().indexOf(q) < 0) return;
        Object.keys(counts).forEach(function (f) { if (kind.keep(it, f)) counts[f]++; });
        if (kind.keep(it, state.filter)) shown.push(it);
      });
      buttons.forEach(function (b) {
        b.classList.toggle("on", b.dataset.filter === state.filter);
        b.setAttribute("aria-pressed", String(b.dataset.filter === state.filter));
        b.querySelector(".n").textContent = counts[b.dataset.filter];
      });
      var pages = Math.max(1, Math.ceil(shown.length / state.per));
      if (state.page >= pages) state.page = pages - 1;
      var start = state.page * state.per, end = Math.min(shown.length, start + state.per);
      count.dataset.count = String(shown.length);
      count.textContent = shown.length ? (start + 1) + "–" + end + " of " + shown.length
                                       : "0 items";
      one(".page-info").textContent = "page " + (state.page + 1) + " / " + pages;
      one(".prev").disabled = state.page === 0;
      one(".next").disabled = state.page >= pages - 1;
      var frag = document.createDocumentFragment();
      for (var i = start; i < end; i++) {
        frag.appendChild(kind.card(shown[i], data.problems[shown[i].x]));
      }
      list.replaceChildren(frag);
      if (!shown.length) list.appendChild(el("div", "empty", "Nothing matches these filters."));
    }
    function set(key, value) { state[key] = value; state.page = 0; render(); }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { set("filter", b.dataset.filter); });
    });
    var runSel = one(".run-select");
    if (runSel) runSel.addEventListener("change", function () { set("run", +runSel.value); });
    var per = one(".per");
    per.addEventListener("change", function () { set("per", +per.value); });
    var search = one(".search"), timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { set("q", search.value.trim()); }, 150);
    });
    [[".prev", -1], [".next", 1]].forEach(function (x) {
      one(x[0]).addEventListener("click", function () {
        state.page += x[1]; render(); section.scrollIntoView();
      });
    });
    render();
  }
  document.querySelectorAll("section.browser").forEach(setup);
})();
