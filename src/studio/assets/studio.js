// offersync studio: the page's only script (served from the binary, no
// build step). The server computes everything; this sends the editor's
// text and swaps in the HTML fragments it gets back.
"use strict";

const post = async (path, body) => {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-studio": "1" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw data;
  return data;
};

const $ = (id) => document.getElementById(id);
const shown = (el, html) => { el.innerHTML = html; };

function startIndex() {
  const go = $("new-go");
  if (!go) return;
  $("new-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (f) $("new-sample").value = await f.text();
  });
  go.addEventListener("click", async () => {
    try {
      const made = await post("/api/new", {
        name: $("new-name").value, sample: $("new-sample").value, url: $("new-url").value,
      });
      location.href = "/edit?file=" + encodeURIComponent(made.file);
    } catch (e) { shown($("new-result"), e.html || String(e)); }
  });
}

function startEditor() {
  const root = $("studio");
  if (!root) return;
  const file = root.dataset.file;
  const text = $("text"), gutter = $("gutter");
  const sample = $("sample"), integration = $("integration");
  let seq = 0, timer = null, chosen = "", marks = [];

  const edit = (extra) => Object.assign({
    file, text: text.value, sample: sample.value, integration: integration.value,
  }, extra || {});

  const drawGutter = () => {
    const count = text.value.split("\n").length;
    const byLine = new Map(marks.map((m) => [m.line, m]));
    const parts = [];
    for (let n = 1; n <= count; n++) {
      const m = byLine.get(n);
      const span = document.createElement("span");
      span.textContent = n;
      if (m) { span.className = m.severity; span.title = m.text; }
      parts.push(span);
    }
    gutter.replaceChildren(...parts);
    gutter.scrollTop = text.scrollTop;
  };

  const fillSelect = (select, values, keep, first) => {
    const options = (first ? [first] : []).concat(values.map((v) => [v, v]));
    const current = keep || select.value;
    select.replaceChildren(...options.map(([value, label]) => {
      const o = document.createElement("option");
      o.value = value; o.textContent = label;
      return o;
    }));
    if (options.some(([v]) => v === current)) select.value = current;
  };

  const refresh = async () => {
    const mine = ++seq;
    const asked = sample.value;
    root.dataset.state = "busy";
    try {
      const r = await post("/api/check", edit());
      if (mine !== seq) return;
      marks = r.gutter;
      drawGutter();
      shown($("problems"), r.problems);
      shown($("tests"), r.tests);
      const live = [];
      for (let i = 1; i <= r.live_pages; i++) live.push("live:" + i);
      fillSelect(sample, r.samples.concat(live), sample.value);
      fillSelect(integration, r.integrations, integration.value, ["", "(none: the mapping only)"]);
      // The first answer names the samples: read the first one at once.
      if (sample.value !== asked) return refresh();
      shown($("results"), r.results);
      if (chosen) markChosen();
    } catch (e) {
      if (mine === seq) shown($("results"), e.html || String(e));
    } finally {
      if (mine === seq) root.dataset.state = "ready";
    }
  };
  // Debounced: one request per pause in typing, stale answers dropped.
  const soon = () => { clearTimeout(timer); timer = setTimeout(refresh, 120); };

  // Chooses a sample the list may not hold yet (a live page just read, a
  // sample just uploaded); the next answer lists it.
  const pick = (value) => {
    if (![...sample.options].some((o) => o.value === value)) {
      const o = document.createElement("option");
      o.value = value; o.textContent = value;
      sample.append(o);
    }
    sample.value = value;
  };

  const markChosen = () => {
    for (const tr of document.querySelectorAll("#offers tr[data-offer]")) {
      tr.classList.toggle("chosen", tr.dataset.offer === chosen);
    }
  };
  const explain = async (offer) => {
    chosen = offer;
    markChosen();
    try {
      const r = await post("/api/explain", edit({ offer }));
      shown($("trace"), r.html);
    } catch (e) { shown($("trace"), e.html || String(e)); }
  };

  text.addEventListener("input", () => { drawGutter(); soon(); });
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
  sample.addEventListener("change", () => { shown($("trace"), ""); chosen = ""; refresh(); });
  integration.addEventListener("change", refresh);
  $("results").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-offer]");
    if (tr) explain(tr.dataset.offer);
  });
  $("results").addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-offer]");
    if (tr && e.key === "Enter") explain(tr.dataset.offer);
  });
  $("problems").addEventListener("click", (e) => {
    const a = e.target.closest("a.goto");
    if (!a) return;
    e.preventDefault();
    const line = Number(a.dataset.line);
    const lines = text.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    text.focus();
    text.setSelectionRange(start, start + (lines[line - 1] || "").length);
  });
  $("next").addEventListener("click", async () => {
    if (sample.value.startsWith("live:")) {
      const page = Number(sample.value.slice(5)) + 1;
      await readLive(page);
      pick("live:" + page);
    } else if (sample.selectedIndex + 1 < sample.options.length) {
      sample.selectedIndex += 1;
    }
    refresh();
  });
  const readLive = async (page) => {
    try {
      const r = await post("/api/live", edit({ page }));
      shown($("livelog"), r.html);
    } catch (e) { shown($("livelog"), e.html || String(e)); }
  };
  $("live").addEventListener("click", async () => {
    await readLive(1);
    pick("live:1");
    refresh();
  });
  $("upload").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      const r = await post("/api/sample", { name: f.name.replace(/\.[^.]*$/, ""), body: await f.text() });
      pick(r.sample);
      refresh();
    } catch (err) { shown($("results"), err.html || String(err)); }
  });
  $("lock").addEventListener("click", async () => {
    try {
      const r = await post("/api/lock", edit());
      text.value = r.text;
      drawGutter();
      refresh();
    } catch (e) { shown($("tests"), e.html || String(e)); }
  });
  $("review").addEventListener("click", async () => {
    try {
      const r = await post("/api/diff", edit());
      shown($("save"), r.html);
    } catch (e) { shown($("save"), e.html || String(e)); }
  });
  $("save").addEventListener("click", async (e) => {
    if (e.target.id !== "confirm") return;
    try {
      const r = await post("/api/save", edit());
      shown($("save"), r.html);
    } catch (err) { shown($("save"), err.html || String(err)); }
  });

  drawGutter();
  refresh();
}

startIndex();
startEditor();
