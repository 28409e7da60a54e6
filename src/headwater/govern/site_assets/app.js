/* headwater docs: draws window.HEADWATER_CATALOG (catalog.js) as a catalog site.
 *
 * Every text of the data reaches the page as a text node or an attribute value, never as
 * markup (no innerHTML anywhere), so a description reading <script> shows as those letters.
 * Pages are drawn when visited (hash routes: #/table/NAME, #/column/TABLE.COLUMN, #/search/Q);
 * the search index and the lineage adjacency are built once, when the page loads.
 */
(function () {
  "use strict";

  const DATA = window.HEADWATER_CATALOG;
  const SVG = "http://www.w3.org/2000/svg";
  const RESULTS_SHOWN = 12; // in the drop-down; the search page lists up to SEARCH_PAGE
  const SEARCH_PAGE = 500;
  const GRAPH = { perLevel: 40, w: 200, h: 42, gapX: 56, gapY: 12, pad: 24 };
  const DEPTHS = [1, 2, 3, 5, 10]; // hops the lineage view follows each way (a choice on it)
  let graphDepth = 3;
  const KIND_ORDER = { table: 0, column: 1, tag: 2, owner: 3 };

  // ---- DOM: elements from data, text always as text ----------------------------------------

  function h(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  function s(tag, attrs, ...children) {
    return build(document.createElementNS(SVG, tag), attrs, children);
  }

  function build(el, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else if (child instanceof Node) el.appendChild(child);
      else el.appendChild(document.createTextNode(String(child)));
    }
  }

  // ---- routes --------------------------------------------------------------------------------

  const enc = encodeURIComponent;
  const tableHref = (name) => "#/table/" + enc(name);
  const columnHref = (table, column) => "#/column/" + enc(table + "." + column);
  const searchHref = (query) => "#/search/" + enc(query);

  function splitNode(name) {
    // a table is zone.name: the column is what follows its second dot
    const first = name.indexOf(".");
    const second = name.indexOf(".", first + 1);
    if (first < 0 || second < 0) return { table: name, column: "" };
    return { table: name.slice(0, second), column: name.slice(second + 1) };
  }

  // ---- the index, built once -----------------------------------------------------------------

  const TABLES = new Map();
  const ZONES = new Map();
  const COLUMNS = new Map(); // "table.column" → {table, column}
  for (const zone of DATA.zones) ZONES.set(zone, []);
  for (const table of [...DATA.tables].sort((a, b) => a.name.localeCompare(b.name))) {
    TABLES.set(table.name, table);
    if (!ZONES.has(table.zone)) ZONES.set(table.zone, []);
    ZONES.get(table.zone).push(table);
    for (const column of table.columns) COLUMNS.set(table.name + "." + column.name, { table, column });
  }

  const NODE = new Map(DATA.lineage.nodes.map((name, i) => [name, i]));
  const UP = DATA.lineage.nodes.map(() => []);
  const DOWN = DATA.lineage.nodes.map(() => []);
  for (const [from, to] of DATA.lineage.edges) {
    DOWN[from].push(to);
    UP[to].push(from);
  }

  const INDEX = buildIndex();

  function buildIndex() {
    const entries = [];
    const tags = new Map();
    const owners = new Map();
    const count = (map, key) => map.set(key, (map.get(key) || 0) + 1);
    for (const table of DATA.tables) {
      const short = table.name.slice(table.zone.length + 1);
      entries.push({
        kind: "table", label: table.name, href: tableHref(table.name),
        names: [table.name.toLowerCase(), short.toLowerCase()],
        tags: table.tags.map((t) => t.toLowerCase()),
        owners: table.owners.map((o) => o.toLowerCase()),
        zone: table.zone, type: "",
        text: (table.description || "").toLowerCase(), detail: table.description || table.kind,
      });
      table.tags.forEach((t) => count(tags, t));
      table.owners.forEach((o) => count(owners, o));
      for (const column of table.columns) {
        const words = [];
        for (const tag of column.tags) {
          words.push(tag.toLowerCase());
          const at = tag.indexOf(":");
          if (at > 0) words.push(tag.slice(0, at).toLowerCase(), tag.slice(at + 1).toLowerCase());
          count(tags, tag);
        }
        entries.push({
          kind: "column", label: table.name + "." + column.name, href: columnHref(table.name, column.name),
          names: [column.name.toLowerCase(), (table.name + "." + column.name).toLowerCase()],
          tags: words, owners: table.owners.map((o) => o.toLowerCase()), zone: table.zone,
          type: (column.type || "").toLowerCase(), pii: column.pii,
          text: (column.description || "").toLowerCase(),
          detail: [column.type, column.description].filter(Boolean).join(" · "), chips: column.tags,
        });
      }
    }
    for (const [tag, n] of tags) {
      entries.push({ kind: "tag", label: tag, href: searchHref(tag.includes(":") ? tag : "tag:" + tag),
        names: [tag.toLowerCase()], tags: [tag.toLowerCase()], owners: [], zone: "", type: "", text: "",
        detail: n + (n === 1 ? " use" : " uses") });
    }
    for (const [owner, n] of owners) {
      entries.push({ kind: "owner", label: owner, href: searchHref('owner:"' + owner + '"'),
        names: [owner.toLowerCase()], tags: [], owners: [owner.toLowerCase()], zone: "", type: "", text: "",
        detail: n + (n === 1 ? " table" : " tables") });
    }
    return entries;
  }

  // ---- search --------------------------------------------------------------------------------

  // field:value finds what contains the value; field:"value" what equals it
  const FIELDS = {
    pii: (e, m) => e.kind === "column" && !!e.pii && m(e.pii.toLowerCase()),
    tag: (e, m) => (e.kind === "table" || e.kind === "column") && e.tags.some(m),
    owner: (e, m) => e.kind === "table" && e.owners.some(m),
    zone: (e, m) => e.kind === "table" && m(e.zone.toLowerCase()),
    type: (e, m) => e.kind === "column" && m(e.type),
  };

  function search(query, limit) {
    const q = query.trim().toLowerCase();
    if (!q) return { hits: [], total: 0 };
    const field = /^(pii|tag|owner|zone|type):(.*)$/.exec(q);
    let scored;
    if (field) {
      const test = FIELDS[field[1]];
      const value = field[2].trim();
      const exact = /^".*"$/.test(value);
      const wanted = exact ? value.slice(1, -1) : value;
      const matches = exact ? (x) => x === wanted : (x) => x.includes(wanted);
      scored = INDEX.filter((e) => test(e, matches)).map((e) => [e, 1]);
    } else {
      const terms = q.split(/\s+/);
      scored = [];
      for (const entry of INDEX) {
        let total = 0;
        for (const term of terms) {
          const points = score(entry, term);
          if (!points) { total = 0; break; }
          total += points;
        }
        if (total) scored.push([entry, total]);
      }
    }
    scored.sort((a, b) => b[1] - a[1] || KIND_ORDER[a[0].kind] - KIND_ORDER[b[0].kind]
      || a[0].label.localeCompare(b[0].label));
    return { hits: scored.slice(0, limit).map((x) => x[0]), total: scored.length };
  }

  function score(entry, term) {
    let best = 0;
    for (const name of entry.names) {
      if (name === term) best = Math.max(best, 100);
      else if (name.startsWith(term)) best = Math.max(best, 70);
      else if (name.includes(term)) best = Math.max(best, 45);
    }
    for (const tag of entry.tags) {
      if (tag === term) best = Math.max(best, 60);
      else if (tag.includes(term)) best = Math.max(best, 30);
    }
    if (entry.owners.some((o) => o.includes(term))) best = Math.max(best, entry.kind === "owner" ? 80 : 20);
    if (!best && entry.text.includes(term)) best = 8;
    return best;
  }

  function resultItem(entry, active) {
    return h("a", { class: "result" + (active ? " active" : ""), href: entry.href, role: "option",
        "data-testid": "search-result", "data-kind": entry.kind, "data-key": entry.label },
      h("span", { class: "result-kind" }, entry.kind),
      h("span", { class: "result-label" }, entry.label,
        entry.kind === "column" ? chips(entry.chips || [], true) : null),
      h("span", { class: "result-detail" }, entry.detail || ""));
  }

  const input = document.getElementById("search");
  const panel = document.getElementById("search-results");
  let shown = [];
  let active = -1;
  let timer = 0;

  function showResults() {
    const query = input.value;
    if (!query.trim()) return hideResults();
    const found = search(query, RESULTS_SHOWN);
    shown = found.hits;
    active = shown.length ? 0 : -1;
    const items = shown.map((e, i) => resultItem(e, i === active));
    if (!items.length) items.push(h("div", { class: "results-empty" }, "Nothing matches “", query.trim(), "”."));
    if (found.total > shown.length) {
      items.push(h("a", { class: "results-more", href: searchHref(query.trim()), "data-testid": "search-all" },
        "All " + found.total + " results →"));
    }
    panel.replaceChildren(...items);
    panel.setAttribute("data-query", query); // what the results are of (tests wait for it)
    panel.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function hideResults() {
    panel.hidden = true;
    input.setAttribute("aria-expanded", "false");
  }

  function moveActive(step) {
    if (!shown.length) return;
    active = (active + step + shown.length) % shown.length;
    panel.querySelectorAll(".result").forEach((el, i) => el.classList.toggle("active", i === active));
    const el = panel.querySelectorAll(".result")[active];
    if (el) el.scrollIntoView({ block: "nearest" });
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(showResults, 40); });
  input.addEventListener("focus", () => { if (input.value.trim()) showResults(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); moveActive(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); moveActive(-1); }
    else if (event.key === "Escape") { hideResults(); input.blur(); }
    else if (event.key === "Enter") {
      clearTimeout(timer);
      showResults();
      const entry = shown[active];
      location.hash = entry ? entry.href : searchHref(input.value.trim());
      hideResults();
    }
  });
  panel.addEventListener("click", (event) => { if (event.target.closest("a")) hideResults(); });
  document.addEventListener("click", (event) => { if (!event.target.closest(".search")) hideResults(); });
  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (event.key === "/" && !typing) { event.preventDefault(); input.focus(); input.select(); }
  });

  // ---- small parts ---------------------------------------------------------------------------

  function chips(tags, small) {
    if (!tags.length) return null;
    return h("span", { class: "chips" }, tags.map((tag) => chip(tag, small)));
  }

  function chip(tag, small) {
    const at = tag.indexOf(":");
    const kind = at > 0 ? tag.slice(0, at) : tag;
    const cls = kind === "pii" ? "pii" : ["key", "time", "metadata"].includes(kind) ? kind : "tag";
    const text = kind === "pii" ? "PII · " + tag.slice(at + 1) : tag;
    const title = tag === "pii:unknown"
      ? "Lineage cannot tell where this column comes from: treated as PII" : null;
    const query = at > 0 ? tag : "tag:" + tag;
    return h(small ? "span" : "a", { class: "chip " + cls, href: small ? null : searchHref(query),
      title, "data-testid": "chip", "data-tag": tag }, text);
  }

  function kindChip(table) {
    const label = table.kind === "model" ? "model · " + table.materialization : table.kind;
    return h("span", { class: "chip kind-" + table.kind, "data-testid": "kind" }, label);
  }

  function status(table) {
    const fresh = table.freshness;
    const last = table.last_run;
    if (fresh.late || (last && ["failed", "blocked"].includes(last.status))) return "bad";
    if (table.rules.some((r) => r.status === "fail")) return "warn";
    if (!last && !table.built) return "";
    return "ok";
  }

  const number = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

  function percent(share) {
    if (share === null || share === undefined) return "—";
    if (share === 0) return "0%";
    if (share < 0.001) return "<0.1%";
    return (share * 100).toFixed(share < 0.1 ? 1 : 0) + "%";
  }

  function when(iso) {
    if (!iso) return h("span", { class: "faint" }, "never");
    const then = new Date(iso);
    const seconds = (new Date(DATA.generated_at) - then) / 1000;
    return h("time", { datetime: iso, title: utc(iso) }, ago(seconds));
  }

  function ago(seconds) {
    if (seconds < 60) return "just now";
    const units = [[86400, "d"], [3600, "h"], [60, "m"]];
    for (const [size, unit] of units) {
      if (seconds >= size) return Math.floor(seconds / size) + unit + " ago";
    }
    return "just now";
  }

  function utc(iso) {
    return iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, " UTC") : "";
  }

  function section(title, note, ...body) {
    return h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", {}, title), note ? h("span", { class: "muted" }, note) : null),
      body);
  }

  function card(label, value, sub, testid) {
    return h("div", { class: "card", "data-testid": testid || null },
      h("div", { class: "card-label" }, label),
      h("div", { class: "card-value" }, value),
      sub ? h("div", { class: "card-sub" }, sub) : null);
  }

  function grid(headers, rows, testid) {
    return h("div", { class: "panel scroll" },
      h("table", { class: "grid", "data-testid": testid || null },
        h("thead", {}, h("tr", {}, headers.map((x) => h("th", { class: x.endsWith("#") ? "num" : null }, x.replace("#", ""))))),
        h("tbody", {}, rows)));
  }

  function tableLink(name) {
    return TABLES.has(name)
      ? h("a", { class: "chip table-link", href: tableHref(name) }, name)
      : h("span", { class: "chip table-link" }, name);
  }

  function runClass(s) {
    if (["failed", "blocked"].includes(s)) return "bad";
    if (["skipped", "running", "interrupted"].includes(s)) return "warn";
    return "ok";
  }

  // ---- nav -----------------------------------------------------------------------------------

  const nav = document.getElementById("nav");
  const opened = new Set();
  const navLists = new Map();

  function drawNav() {
    const parts = [h("a", { class: "nav-home", href: "#/" }, "Overview")];
    const expandAll = DATA.tables.length <= 80;
    for (const [zone, tables] of ZONES) {
      if (!tables.length) continue;
      if (expandAll) opened.add(zone);
      const list = h("ul", { "data-zone": zone });
      const toggle = h("button", { class: "zone-toggle", type: "button", "aria-expanded": "false",
          "data-testid": "zone-toggle", "data-zone": zone, onclick: () => flip(zone) },
        h("span", { class: "caret", "aria-hidden": "true" }, "▸"), zone,
        h("span", { class: "count" }, tables.length));
      navLists.set(zone, { list, toggle, tables });
      parts.push(h("div", { class: "nav-zone" }, toggle, list));
    }
    nav.replaceChildren(...parts);
    for (const zone of opened) fill(zone);
  }

  function flip(zone) {
    if (opened.has(zone)) {
      opened.delete(zone);
      const entry = navLists.get(zone);
      entry.list.replaceChildren();
      entry.toggle.setAttribute("aria-expanded", "false");
    } else {
      opened.add(zone);
      fill(zone);
    }
  }

  function fill(zone) {
    // a zone's links are drawn when it opens: 500 models cost nothing until looked at
    const entry = navLists.get(zone);
    if (!entry) return;
    entry.toggle.setAttribute("aria-expanded", "true");
    if (entry.list.childElementCount) return;
    entry.list.replaceChildren(...entry.tables.map((t) =>
      h("li", {}, h("a", { href: tableHref(t.name), "data-table": t.name, title: t.name },
        h("span", { class: "dot " + status(t) }), t.name.slice(zone.length + 1)))));
    markCurrent();
  }

  let currentTable = null;

  function markCurrent() {
    nav.querySelectorAll("a[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
    if (!currentTable) return;
    const link = [...nav.querySelectorAll("a[data-table]")].find((a) => a.dataset.table === currentTable);
    if (link) {
      link.setAttribute("aria-current", "page");
      link.scrollIntoView({ block: "nearest" });
    }
  }

  // ---- pages ---------------------------------------------------------------------------------

  const main = document.getElementById("main");

  function render() {
    const hash = location.hash.replace(/^#\/?/, "");
    const slash = hash.indexOf("/");
    const page = slash < 0 ? hash : hash.slice(0, slash);
    let arg = "";
    try { arg = decodeURIComponent(slash < 0 ? "" : hash.slice(slash + 1)); } catch (e) { arg = ""; }
    currentTable = null;
    let view;
    if (page === "table") view = tablePage(arg);
    else if (page === "column") view = columnPage(arg);
    else if (page === "search") view = searchPage(arg);
    else {
      document.title = DATA.project + " · headwater docs";
      view = homePage();
    }
    main.replaceChildren(view);
    if (currentTable) {
      const zone = TABLES.get(currentTable).zone;
      if (!opened.has(zone)) { opened.add(zone); fill(zone); }
    }
    markCurrent();
    window.scrollTo(0, 0);
  }

  function notFound(what) {
    return h("div", { class: "page", "data-testid": "not-found" },
      h("h1", {}, "Not found"), h("p", { class: "muted" }, "No ", what, " in this catalog. ",
        h("a", { href: "#/" }, "Back to the overview")));
  }

  function homePage() {
    const tables = DATA.tables;
    const columns = tables.reduce((n, t) => n + t.columns.length, 0);
    const pii = tables.reduce((n, t) => n + t.columns.filter((c) => c.pii).length, 0);
    const rules = tables.flatMap((t) => t.rules.map((r) => ({ table: t, rule: r })));
    const failing = rules.filter((x) => x.rule.status === "fail");
    const late = tables.filter((t) => t.freshness.late);
    const broken = tables.filter((t) => t.last_run && ["failed", "blocked"].includes(t.last_run.status));
    return h("div", { class: "page", "data-testid": "home-page" },
      h("h1", {}, DATA.project),
      h("p", { class: "description muted" }, "Data catalog of every contract, seed and model: owners, docs, columns and their tags, freshness, rule results, runs and column lineage."),
      DATA.built ? null : h("div", { class: "banner", "data-testid": "never-built" },
        "This project has never been run: these pages document its specs only. Run ",
        h("code", {}, "headwater run"), ", then ", h("code", {}, "headwater docs"),
        " again for freshness, rule results, runs and column profiles."),
      h("div", { class: "cards" },
        card("Tables", number(tables.length), zoneSummary(), "stat-tables"),
        card("Columns", number(columns), pii + " tagged PII", "stat-columns"),
        card("Rules", number(rules.length), rules.some((x) => x.rule.result)
          ? failing.length + " failing" : "not run yet", "stat-rules"),
        card("Late tables", number(late.length), late.length ? "against their SLA" : "none late", "stat-late")),
      attention(late, broken, failing),
      section("Zones", null, h("div", { class: "cards" }, [...ZONES].filter(([, t]) => t.length).map(([zone, t]) =>
        h("a", { class: "card", href: tableHref(t[0].name) }, h("div", { class: "card-label" }, zone),
          h("div", { class: "card-value" }, t.length + (t.length === 1 ? " table" : " tables")),
          h("div", { class: "card-sub" }, t.slice(0, 3).map((x) => x.name.slice(zone.length + 1)).join(", ") + (t.length > 3 ? ", …" : "")))))),
      runsSection(),
      DATA.notes.length ? section("Notes", "while gathering this catalog",
        h("div", { class: "panel panel-pad" }, h("ul", {}, DATA.notes.map((n) => h("li", {}, n))))) : null);
  }

  function zoneSummary() {
    return [...ZONES].filter(([, t]) => t.length).map(([zone, t]) => t.length + " " + zone).join(" · ");
  }

  function attention(late, broken, failing) {
    const items = [];
    for (const t of late) items.push([tableLink(t.name), " is late: ", t.freshness.verdict]);
    for (const t of broken) items.push([tableLink(t.name), " — its newest run ", t.last_run.status, " (run ", t.last_run.run_id, ")"]);
    for (const x of failing) {
      items.push([tableLink(x.table.name), " — rule ", h("b", {}, x.rule.name), " fails",
        x.rule.on_fail === "block" ? " (blocking)" : " (" + x.rule.severity + ")"]);
    }
    if (!items.length) return null;
    return section("Needs attention", items.length + (items.length === 1 ? " item" : " items"),
      h("div", { class: "panel panel-pad", "data-testid": "attention" },
        h("ul", {}, items.slice(0, 50).map((x) => h("li", {}, x)))));
  }

  function runsSection() {
    if (!DATA.runs.length) return null;
    const rows = DATA.runs.map((r) => h("tr", {},
      h("td", { class: "mono" }, r.run_id),
      h("td", {}, h("code", {}, "headwater " + r.command)),
      h("td", {}, h("span", { class: "chip " + runClass(r.status) }, r.status)),
      h("td", {}, when(r.ended_at || r.started_at)),
      h("td", { class: "num" }, r.seconds === null ? "—" : r.seconds.toFixed(1) + " s"),
      h("td", { class: "num" }, number(r.landed)),
      h("td", { class: "num" }, number(r.quarantined)),
      h("td", { class: "num" }, number(r.models_built)),
      h("td", { class: "num" }, number(r.rules_failed))));
    return section("Recent runs", "newest first",
      grid(["Run", "Command", "Status", "Ended", "Took#", "Landed#", "Quarantined#", "Built#", "Rules failed#"], rows, "runs"));
  }

  function tablePage(name) {
    const table = TABLES.get(name);
    if (!table) return notFound("table " + name);
    currentTable = name;
    document.title = name + " · " + DATA.project + " · headwater docs";
    return h("article", { class: "page", "data-testid": "table-page", "data-table": name },
      h("div", { class: "crumbs" }, h("a", { href: "#/" }, DATA.project), " / ", table.zone),
      h("div", { class: "title-row" }, h("h1", { "data-testid": "table-title" }, table.name), kindChip(table),
        chips(table.tags, false)),
      table.description
        ? h("p", { class: "description", "data-testid": "table-description" }, table.description)
        : h("p", { class: "description empty" }, "No description yet."),
      h("div", { class: "cards" },
        card("Owner", table.owners.length ? table.owners.join(", ") : "—", table.owners.length ? null : "no owner declared", "owner"),
        card("Freshness", freshLabel(table), freshSub(table), "freshness"),
        card("Rows", number(table.rows), table.built ? "profiled " + utc(DATA.generated_at) : "not in the warehouse", "rows"),
        card("Newest run", table.last_run ? table.last_run.status : "never", table.last_run ? [when(table.last_run.ended_at), " · run ", table.last_run.run_id] : null, "last-run")),
      columnsSection(table),
      rulesSection(table),
      historySection(table),
      section("Lineage", null, h("div", { class: "panel panel-pad" },
        h("dl", { class: "facts" },
          h("dt", {}, "Reads"), h("dd", { "data-testid": "depends-on" }, table.depends_on.length ? h("span", { class: "chips" }, table.depends_on.map(tableLink)) : h("span", { class: "faint" }, table.kind === "model" ? "nothing" : "its source")),
          h("dt", {}, "Read by"), h("dd", { "data-testid": "used-by" }, table.used_by.length ? h("span", { class: "chips" }, table.used_by.map(tableLink)) : h("span", { class: "faint" }, "no model"))),
        table.lineage_issue ? h("p", { class: "muted" }, "Column lineage is incomplete: ", table.lineage_issue) : null)),
      section("Definition", null, h("div", { class: "panel panel-pad" }, facts(table))));
  }

  function freshLabel(table) {
    const f = table.freshness;
    if (f.late) return h("span", { class: "chip bad" }, "late");
    if (!f.updated_at) return h("span", { class: "faint" }, f.verdict);
    return when(f.updated_at);
  }

  function freshSub(table) {
    const f = table.freshness;
    const sla = f.sla ? Object.entries(f.sla).map(([k, v]) => k + " " + v).join(", ") : null;
    if (f.late) return f.verdict;
    if (!f.updated_at) return sla ? "sla: " + sla : null;
    return sla ? "sla " + sla + ": " + f.verdict : "no sla declared";
  }

  function facts(table) {
    const rows = [["File", h("code", {}, table.file)]];
    for (const [key, value] of Object.entries(table.details)) {
      if (value === null || value === undefined || value === false) continue;
      rows.push([key.replace(/_/g, " "), value === true ? "yes" : String(value)]);
    }
    rows.push([table.kind === "model" ? "Kind" : "Load", table.materialization]);
    return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k.charAt(0).toUpperCase() + k.slice(1)), h("dd", {}, v)]));
  }

  function columnsSection(table) {
    const rows = table.columns.map((c) => {
      const p = c.profile;
      return h("tr", { "data-testid": "column-row", "data-column": c.name },
        h("td", { class: "name" }, h("a", { href: columnHref(table.name, c.name) }, c.name)),
        h("td", {}, c.type ? h("code", {}, c.type) : h("span", { class: "faint" }, "—")),
        h("td", { class: "desc" }, c.description || h("span", { class: "faint" }, "—")),
        h("td", {}, chips(c.tags, false)),
        h("td", { class: "num" }, p ? nullBar(p.nulls) : "—"),
        h("td", { class: "num" }, p ? number(p.distinct) : "—"),
        bound(c, "min"), bound(c, "max"));
    });
    const note = table.columns.length + (table.columns.length === 1 ? " column" : " columns");
    return section("Columns", note,
      grid(["Column", "Type", "Description", "Tags", "Nulls#", "Distinct ≈#", "Min", "Max"], rows, "columns-table"));
  }

  function nullBar(share) {
    if (share === null || share === undefined) return "—";
    const fill = h("span");
    fill.style.width = Math.round(share * 100) + "%"; // the CSSOM, which the CSP allows
    return [h("span", { class: "bar" + (share > 0.2 ? " high" : "") }, fill), percent(share)];
  }

  function bound(column, which) {
    if (column.pii) return h("td", { class: "value" }, h("span", { class: "hidden-value", title: "Values of PII-tagged columns are never shown" }, "hidden · PII"));
    const p = column.profile;
    const value = p && which in p ? shownValue(p[which]) : null;
    return h("td", { class: "value", title: value }, value === null ? "—" : value);
  }

  function shownValue(value) {
    if (value === null || value === undefined) return null;
    const text = String(value);
    // an ISO date-time as people read it
    return /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(text) ? text.replace("T", " ") : text;
  }

  function rulesSection(table) {
    if (!table.rules.length) return section("Quality rules", null, h("p", { class: "empty" }, "No rules on this table."));
    const rows = table.rules.map((r) => h("tr", { "data-testid": "rule-row", "data-rule": r.name },
      h("td", {}, h("span", { class: "chip " + (r.status === "pass" ? "ok" : r.status === "fail" ? (r.on_fail === "block" ? "bad" : "warn") : "") }, r.status)),
      h("td", { class: "name" }, r.name),
      h("td", {}, r.type.replace(/_/g, " ")),
      h("td", {}, h("code", {}, r.target)),
      h("td", {}, r.severity + " → " + r.on_fail),
      h("td", { class: "num" }, r.result && r.result.metric !== null ? number(r.result.metric) : "—"),
      h("td", {}, r.result && r.result.threshold ? r.result.threshold : r.threshold || "—"),
      h("td", {}, r.result ? when(r.result.checked_at) : h("span", { class: "faint" }, "never"))));
    const failing = table.rules.filter((r) => r.status === "fail").length;
    return section("Quality rules", failing ? failing + " failing of " + table.rules.length : table.rules.length + " rules",
      grid(["Status", "Rule", "Type", "Target", "On failure", "Observed#", "Threshold", "Checked"], rows, "rules-table"));
  }

  function historySection(table) {
    if (!table.history.length) {
      return section("Runs", null, h("p", { class: "empty" }, DATA.built ? "No recent run touched this table." : "Never built."));
    }
    const strip = h("div", { class: "strip", "data-testid": "run-strip", "aria-label": "recent outcomes, oldest first" },
      [...table.history].reverse().map((t) => h("span", { class: runClass(t.status), title: t.run_id + " · " + t.status + " · " + number(t.rows) + " rows" })));
    const rows = table.history.map((t) => h("tr", {},
      h("td", { class: "mono" }, t.run_id),
      h("td", {}, h("span", { class: "chip " + runClass(t.status) }, t.status)),
      h("td", { class: "num" }, number(t.rows)),
      h("td", { class: "num" }, number(t.quarantined)),
      h("td", { class: "num" }, number(t.attempts)),
      h("td", {}, when(t.ended_at))));
    return section("Runs", "this table in the recent runs, newest first", strip,
      grid(["Run", "Outcome", "Rows#", "Quarantined#", "Attempts#", "Ended"], rows, "history-table"));
  }

  function columnPage(key) {
    const found = COLUMNS.get(key);
    const { table: tableName, column: columnName } = splitNode(key);
    if (!found && !NODE.has(key)) return notFound("column " + key);
    const table = found ? found.table : TABLES.get(tableName);
    const column = found ? found.column : null;
    if (table) currentTable = table.name;
    document.title = key + " · " + DATA.project + " · headwater docs";
    const p = column && column.profile;
    const rules = table ? table.rules.filter((r) => r.columns.includes(columnName)) : [];
    return h("article", { class: "page", "data-testid": "column-page", "data-column": key },
      h("div", { class: "crumbs" }, h("a", { href: "#/" }, DATA.project), " / ",
        table ? h("a", { href: tableHref(table.name) }, table.name) : tableName),
      h("div", { class: "title-row" }, h("h1", { "data-testid": "column-title" }, columnName === "*" ? tableName + " (rows)" : key),
        column && column.type ? h("span", { class: "chip" }, column.type) : null,
        column ? chips(column.tags, false) : null),
      column && column.description
        ? h("p", { class: "description", "data-testid": "column-description" }, column.description)
        : h("p", { class: "description empty" }, columnName === "*" ? "The rows of the table: what filters, groups or counts them." : "No description yet."),
      column ? h("div", { class: "cards" },
        card("Nulls", p ? percent(p.nulls) : "—"),
        card("Distinct ≈", p ? number(p.distinct) : "—"),
        column.pii ? card("Values", h("span", { class: "hidden-value" }, "hidden · PII"), "values of PII-tagged columns are never shown", "values-hidden")
          : card("Range", p && "min" in p ? shownValue(p.min) + " … " + shownValue(p.max) : "—", null, "range"),
        rules.length ? card("Rules", rules.length, rules.map((r) => r.name + ": " + r.status).join(", ")) : null) : null,
      column && column.pii ? h("div", { class: "banner pii-why", "data-testid": "pii-why" },
        h("b", {}, "PII · " + column.pii), " — ", column.pii_why || "tagged",
        ". Its values (range, samples) are never written to this site.") : null,
      lineageSection(key));
  }

  function searchPage(query) {
    input.value = query;
    const found = search(query, SEARCH_PAGE);
    document.title = "Search: " + query + " · headwater docs";
    const groups = ["table", "column", "tag", "owner"].map((kind) => [kind, found.hits.filter((e) => e.kind === kind)]);
    return h("div", { class: "page", "data-testid": "search-page" },
      h("h1", {}, "Search: ", query),
      h("p", { class: "muted" }, found.total + (found.total === 1 ? " result" : " results"),
        found.total > found.hits.length ? " (first " + found.hits.length + " shown)" : "",
        " · try ", h("code", {}, "pii:email"), ", ", h("code", {}, "owner:analytics"), ", ", h("code", {}, "zone:marts"), " or ", h("code", {}, "type:timestamp")),
      groups.filter(([, hits]) => hits.length).map(([kind, hits]) =>
        section(kind.charAt(0).toUpperCase() + kind.slice(1) + "s", String(hits.length),
          h("div", { class: "panel", "data-testid": "search-page-results" }, hits.map((e) => resultItem(e, false))))));
  }

  // ---- column lineage graph ------------------------------------------------------------------

  function lineageSection(key) {
    const graph = layout(key, graphDepth);
    const upstream = graph.nodes.filter((n) => n.name && n.level < 0).length;
    const downstream = graph.nodes.filter((n) => n.name && n.level > 0).length;
    const direct = (list) => list.map((i) => DATA.lineage.nodes[i]).sort();
    const id = NODE.get(key);
    const ups = id === undefined ? [] : direct(UP[id]);
    const downs = id === undefined ? [] : direct(DOWN[id]);
    const wrap = graph.nodes.length > 1 ? h("div", { class: "graph-wrap" }, drawGraph(graph)) : null;
    const note = upstream + " upstream · " + downstream + " downstream" +
      (graph.truncated ? " within " + graphDepth + (graphDepth === 1 ? " hop" : " hops") : "");
    const view = section("Column lineage", note,
      h("div", { class: "panel" },
        legend(),
        depthPicker(() => view.replaceWith(lineageSection(key))),
        wrap || h("p", { class: "panel-pad empty", "data-testid": "no-lineage" }, "No column lineage: nothing is recorded upstream or downstream of this column.")),
      h("div", { class: "hops" },
        hopList("Reads directly from", ups, "direct-upstream"),
        hopList("Read directly by", downs, "direct-downstream")));
    view.setAttribute("data-testid", "lineage-section");
    if (wrap) requestAnimationFrame(() => center(wrap, graph));
    return view;
  }

  function depthPicker(redraw) {
    return h("div", { class: "depths", role: "group", "aria-label": "hops shown each way" }, "Hops each way",
      DEPTHS.map((d) => h("button", { type: "button", class: "depth", "aria-pressed": String(d === graphDepth),
        "data-testid": "depth", "data-depth": d, onclick: () => { graphDepth = d; redraw(); } }, String(d))));
  }

  function center(wrap, graph) {
    // the selected column in view, however long the chain on either side
    const node = graph.nodes.find((n) => n.level === 0);
    wrap.scrollLeft = Math.max(0, node.x + GRAPH.w / 2 - wrap.clientWidth / 2);
    wrap.scrollTop = Math.max(0, node.y + GRAPH.h / 2 - wrap.clientHeight / 2);
  }

  function hopList(title, names, testid) {
    return h("div", { class: "panel panel-pad", "data-testid": testid }, h("b", {}, title),
      names.length ? h("ul", {}, names.map((n) => { const x = splitNode(n); return h("li", {}, h("a", { href: columnHref(x.table, x.column) }, x.column === "*" ? x.table + " (rows)" : n)); }))
        : h("p", { class: "faint" }, "nothing"));
  }

  function legend() {
    const item = (cls, text) => h("span", {}, h("span", { class: "swatch " + cls }), text);
    return h("div", { class: "legend", "data-testid": "lineage-legend" },
      item("center", "selected column"), item("source", "raw or seed column"), item("model", "model column"),
      item("rows", "a table's rows (*)"), item("pii", "PII-tagged"),
      h("span", { class: "spacer" }, "upstream ← → downstream · click a column to center on it"));
  }

  function layout(key, depth) {
    const start = NODE.get(key);
    const levels = new Map([[key, 0]]);
    let truncated = false;
    if (start !== undefined) {
      truncated = walk(start, UP, -1, levels, depth) | walk(start, DOWN, 1, levels, depth);
    }
    const byLevel = new Map();
    for (const [name, level] of levels) {
      if (!byLevel.has(level)) byLevel.set(level, []);
      byLevel.get(level).push(name);
    }
    const nodes = [];
    let tallest = 0;
    const order = [...byLevel.keys()].sort((a, b) => a - b);
    for (const level of order) {
      const names = byLevel.get(level).sort();
      const kept = names.slice(0, GRAPH.perLevel);
      const column = kept.map((name) => ({ name, level }));
      if (names.length > kept.length) column.push({ name: null, level, more: names.length - kept.length });
      tallest = Math.max(tallest, column.length);
      nodes.push(column);
    }
    const placed = [];
    const stepY = GRAPH.h + GRAPH.gapY;
    nodes.forEach((column, x) => column.forEach((node, y) => {
      node.x = GRAPH.pad + x * (GRAPH.w + GRAPH.gapX);
      node.y = GRAPH.pad + 16 + y * stepY + ((tallest - column.length) * stepY) / 2;
      placed.push(node);
    }));
    return { nodes: placed, levels: order, truncated: !!truncated, width: GRAPH.pad * 2 + order.length * (GRAPH.w + GRAPH.gapX) - GRAPH.gapX,
      height: GRAPH.pad * 2 + 16 + tallest * stepY - GRAPH.gapY };
  }

  function walk(start, adjacency, step, levels, most) {
    // breadth first, `most` hops at most; whether more lies beyond
    let frontier = [start];
    for (let depth = 1; frontier.length && depth <= most; depth++) {
      const next = [];
      for (const id of frontier) {
        for (const other of adjacency[id]) {
          const name = DATA.lineage.nodes[other];
          if (levels.has(name)) continue;
          levels.set(name, step * depth);
          next.push(other);
        }
      }
      frontier = next;
    }
    return frontier.some((id) => adjacency[id].some((other) => !levels.has(DATA.lineage.nodes[other])));
  }

  function drawGraph(graph) {
    const at = new Map(graph.nodes.filter((n) => n.name).map((n) => [n.name, n]));
    const svg = s("svg", { class: "graph", width: graph.width, height: graph.height, viewBox: "0 0 " + graph.width + " " + graph.height,
      role: "img", "aria-label": "column lineage graph", "data-testid": "lineage-graph" });
    graph.levels.forEach((level, x) => {
      const label = level === 0 ? "selected" : level < 0 ? -level + " up" : level + " down";
      svg.appendChild(s("text", { class: "level-label", x: GRAPH.pad + x * (GRAPH.w + GRAPH.gapX) + 2, y: GRAPH.pad }, label));
    });
    const edges = s("g", { class: "edges" });
    svg.appendChild(edges);
    for (const node of at.values()) {
      const id = NODE.get(node.name);
      if (id === undefined) continue;
      for (const from of UP[id]) {
        const source = at.get(DATA.lineage.nodes[from]);
        if (!source || source.level >= node.level) continue;
        edges.appendChild(edge(source, node));
      }
    }
    for (const node of graph.nodes) svg.appendChild(node.name ? drawNode(node, svg) : moreNode(node));
    return svg;
  }

  function edge(from, to) {
    const x1 = from.x + GRAPH.w, y1 = from.y + GRAPH.h / 2, x2 = to.x, y2 = to.y + GRAPH.h / 2;
    const mid = (x1 + x2) / 2;
    return s("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
      "data-testid": "lineage-edge", "data-from": from.name, "data-to": to.name });
  }

  function drawNode(node, svg) {
    const { table, column } = splitNode(node.name);
    const owner = TABLES.get(table);
    const found = COLUMNS.get(node.name);
    const pii = found && found.column.pii;
    const kind = !owner ? "external" : owner.kind === "model" ? "model" : "source";
    const side = node.level < 0 ? "upstream" : node.level > 0 ? "downstream" : "center";
    const cls = ["node", kind, column === "*" ? "rows" : "", side === "center" ? "center" : ""].join(" ");
    const go = () => { location.hash = columnHref(table, column); };
    const g = s("g", { class: cls, transform: `translate(${node.x},${node.y})`, tabindex: 0, role: "link",
        "data-testid": "lineage-node", "data-node": node.name, "data-side": side,
        onclick: go, onkeydown: (e) => { if (e.key === "Enter") go(); },
        onmouseenter: () => light(svg, node.name, true), onmouseleave: () => light(svg, node.name, false) },
      s("title", {}, node.name + (pii ? " · PII: " + pii : "") + (owner ? "" : " (not documented here)")),
      s("rect", { class: "box", width: GRAPH.w, height: GRAPH.h, rx: 7 }),
      pii ? s("rect", { class: "pii-mark", x: 0, y: 6, width: 4, height: GRAPH.h - 12, rx: 2 }) : null,
      s("text", { class: "table-name", x: 12, y: 16 }, clip(table, 30)),
      s("text", { class: "column-name", x: 12, y: 33 }, clip(column === "*" ? "(rows)" : column, 26)));
    return g;
  }

  function moreNode(node) {
    return s("g", { class: "node more", transform: `translate(${node.x},${node.y})`, "data-testid": "lineage-more" },
      s("rect", { class: "box", width: GRAPH.w, height: GRAPH.h, rx: 7 }),
      s("text", { class: "table-name", x: 12, y: 26 }, "+" + node.more + " more (search to find them)"));
  }

  function light(svg, name, on) {
    svg.querySelectorAll(".edge").forEach((e) => {
      if (e.getAttribute("data-from") === name || e.getAttribute("data-to") === name) e.classList.toggle("lit", on);
    });
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  // ---- start ---------------------------------------------------------------------------------

  document.getElementById("project-name").textContent = DATA.project;
  document.getElementById("generated").textContent = "generated " + utc(DATA.generated_at);
  document.title = DATA.project + " · headwater docs";
  drawNav();
  window.addEventListener("hashchange", render);
  render();
})();
