// portintel report: tabs, sorting, filtering and score breakdowns over the embedded JSON.
// Values from providers are hostile: they only ever reach the page through textContent
// and setAttribute("title"), never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 500;
  var COLOURS = { red: 0, yellow: 1, green: 2 };
  var GRADES = { insecure: 0, weak: 1, secure: 2, recommended: 3, unknown: 4 };
  var tables = {};

  function cell(tag, value, cls) {
    var el = document.createElement(tag);
    if (value !== null && value !== undefined) el.textContent = String(value);
    if (cls) el.className = cls;
    return el;
  }

  function link(value, onClick) {
    var a = cell("a", value, "link");
    a.setAttribute("role", "link");
    a.tabIndex = 0;
    a.addEventListener("click", onClick);
    a.addEventListener("keydown", function (e) { if (e.key === "Enter") onClick(e); });
    return a;
  }

  // Filter terms: plain words match anywhere in a row; column:value (or column:"a b")
  // matches that column exactly, ignoring case. All terms must match.
  function parseFilter(text, columns) {
    var terms = [];
    var re = /(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)/g;
    var m;
    while ((m = re.exec(text)) !== null) {
      var key = m[1] || m[3];
      var value = m[1] ? m[2] : m[4];
      var index = key ? columns.findIndex(function (c) { return c.key === key; }) : -1;
      if (index >= 0) {
        terms.push({ index: index, value: value.toLowerCase() });
      } else {
        terms.push({ index: -1, value: (m[5] !== undefined ? m[5] : m[0]).toLowerCase() });
      }
    }
    return terms;
  }

  function matches(state, i) {
    var row = state.rows[i];
    for (var t = 0; t < state.terms.length; t++) {
      var term = state.terms[t];
      if (term.index >= 0) {
        var v = row[term.index];
        if ((v === null ? "" : String(v)).toLowerCase() !== term.value) return false;
      } else if (state.haystack[i].indexOf(term.value) < 0) {
        return false;
      }
    }
    for (var s = 0; s < state.selects.length; s++) {
      var sel = state.selects[s];
      if (sel.el.value && row[sel.index] !== sel.el.value) return false;
    }
    return true;
  }

  function sortKey(state, row, index) {
    var column = state.columns[index];
    var v = row[index];
    if (column.kind === "ip") return row[state.columns.length + 1];
    if (v === null || v === "") return null;
    if (column.kind === "colour") return v in COLOURS ? COLOURS[v] : 9;
    if (column.kind === "grade") return v in GRADES ? GRADES[v] : 9;
    return v;
  }

  function compare(a, b, kind) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    // Address keys are fixed-width hex and dates ISO: plain order is their order.
    if (kind === "ip" || kind === "date") return a < b ? -1 : a > b ? 1 : 0;
    return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
  }

  function apply(state) {
    state.terms = parseFilter(state.filter.value, state.columns);
    var view = [];
    for (var i = 0; i < state.rows.length; i++) if (matches(state, i)) view.push(i);
    if (state.sortIndex >= 0) {
      var dir = state.sortDir;
      var kind = state.columns[state.sortIndex].kind;
      var keys = {};
      view.forEach(function (i) { keys[i] = sortKey(state, state.rows[i], state.sortIndex); });
      view.sort(function (i, j) {
        var a = keys[i], b = keys[j];
        if (a === null && b === null) return i - j;
        if (a === null) return 1; // empty cells last, whichever the direction
        if (b === null) return -1;
        return compare(a, b, kind) * dir || i - j;
      });
    }
    state.view = view;
    state.limit = PAGE;
    render(state);
  }

  function render(state) {
    var body = document.createDocumentFragment();
    var shown = Math.min(state.limit, state.view.length);
    for (var k = 0; k < shown; k++) {
      var i = state.view[k];
      body.appendChild(renderRow(state, state.rows[i]));
      if (state.name === "summary" && state.expanded[state.rows[i][0]]) {
        body.appendChild(breakdown(state.rows[i][0], state.columns.length + 1));
      }
    }
    state.tbody.replaceChildren(body);
    var total = state.rows.length;
    state.count.textContent = "Showing " + shown.toLocaleString() + " of " +
      state.view.length.toLocaleString() + " matching (" + total.toLocaleString() + " in all)";
    state.more.hidden = shown >= state.view.length;
  }

  function renderRow(state, row) {
    var tr = document.createElement("tr");
    var n = state.columns.length;
    if (state.name === "summary") {
      var td = cell("td", null, "expand");
      var button = cell("button", state.expanded[row[0]] ? "\u2212" : "+");
      button.type = "button";
      button.setAttribute("aria-label", "score breakdown of " + row[0]);
      button.setAttribute("aria-expanded", state.expanded[row[0]] ? "true" : "false");
      button.addEventListener("click", function () {
        state.expanded[row[0]] = !state.expanded[row[0]];
        render(state);
      });
      td.appendChild(button);
      tr.appendChild(td);
    }
    state.columns.forEach(function (column, index) {
      var value = row[index];
      var cls = "";
      if (column.kind === "number") cls = "number";
      if (column.kind === "date" || column.kind === "ip") cls = "nowrap";
      if (column.kind === "colour" && value in COLOURS) cls = "colour-" + value;
      if (column.kind === "grade" && value in GRADES) cls = "grade-" + value;
      if (column.key === "banner") cls = "banner";
      if (column.key === "score") cls = "number score " + (value >= 50 ? "high" : value >= 20 ? "medium" : "low");
      var td = cell("td", null, cls);
      td.dataset.key = column.key;
      if (state.name === "summary" && column.key === "target") {
        td.appendChild(link(value, function () { showList("ip:" + value); }));
      } else if (state.name === "products" && (column.key === "instances" || column.key === "targets")) {
        var product = row[0], version = row[1];
        td.appendChild(link(value, function () {
          showList('product:"' + product + '"' + (version ? ' version:"' + version + '"' : ""));
        }));
      } else {
        td.textContent = value === null || value === undefined ? "" : String(value);
      }
      if (column.key === "banner" && row[n]) td.setAttribute("title", row[n]);
      tr.appendChild(td);
    });
    return tr;
  }

  function breakdown(target, span) {
    var tr = cell("tr", null, "breakdown");
    var td = cell("td");
    td.colSpan = span;
    var table = cell("table");
    var head = cell("tr");
    ["Rule", "Points", "Endpoint", "Evidence", "Why"].forEach(function (h) { head.appendChild(cell("th", h)); });
    table.appendChild(cell("thead")).appendChild(head);
    var body = table.appendChild(cell("tbody"));
    (data.findings[target] || []).forEach(function (f) {
      // [rule, severity, points, base_points, weight, endpoint, evidence, rationale, allowlist]
      var row = cell("tr");
      row.appendChild(cell("td", f[0] + " (" + f[1] + ")"));
      var points = String(f[2]);
      if (f[4] < 1) points += " (" + f[3] + " \u00d7 " + f[4] + ")";
      row.appendChild(cell("td", points, "number"));
      row.appendChild(cell("td", f[5] || "asset"));
      row.appendChild(cell("td", f[6] + (f[8] ? "; " + f[8] : "")));
      row.appendChild(cell("td", f[7]));
      body.appendChild(row);
    });
    if (!(data.findings[target] || []).length) {
      var none = cell("tr");
      var empty = cell("td", "No rule gave points to this asset.");
      empty.colSpan = 5;
      none.appendChild(empty);
      body.appendChild(none);
    }
    td.appendChild(table);
    tr.appendChild(td);
    return tr;
  }

  function sortBy(state, index) {
    state.sortDir = state.sortIndex === index ? -state.sortDir : 1;
    state.sortIndex = index;
    state.columns.forEach(function (column, i) {
      column.th.setAttribute("aria-sort", i !== index ? "none" : state.sortDir > 0 ? "ascending" : "descending");
    });
    apply(state);
  }

  function setup(name) {
    var table = document.getElementById("table-" + name);
    var columns = Array.prototype.map.call(table.querySelectorAll("thead th[data-key]"), function (th) {
      return { key: th.dataset.key, kind: th.dataset.kind, th: th };
    });
    var rows = data.tables[name].rows;
    var state = {
      name: name, columns: columns, rows: rows, tbody: table.tBodies[0],
      filter: document.getElementById("filter-" + name),
      count: document.getElementById("count-" + name),
      more: document.getElementById("more-" + name),
      selects: [], sortIndex: -1, sortDir: 1, limit: PAGE, view: [], terms: [], expanded: {},
    };
    state.haystack = rows.map(function (row) {
      return row.slice(0, columns.length).map(function (v) { return v === null ? "" : String(v); })
        .join("\u0001").toLowerCase();
    });
    ["colour", "status"].forEach(function (key) {
      var el = document.getElementById(key + "-" + name);
      var index = columns.findIndex(function (c) { return c.key === key; });
      if (el && index >= 0) {
        state.selects.push({ el: el, index: index });
        el.addEventListener("change", function () { apply(state); });
      }
    });
    columns.forEach(function (column, i) {
      column.th.querySelector("button").addEventListener("click", function () { sortBy(state, i); });
    });
    state.filter.addEventListener("input", function () { apply(state); });
    state.more.addEventListener("click", function () { state.limit += PAGE; render(state); });
    tables[name] = state;
    apply(state);
  }

  var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));

  function select(name, focus) {
    tabs.forEach(function (tab) {
      var on = tab.id === "tab-" + name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) tab.focus();
    });
    try { history.replaceState(null, "", "#" + name); } catch (e) { /* file: URLs may refuse */ }
  }

  function showList(filter) {
    var state = tables.list;
    state.filter.value = filter;
    state.selects.forEach(function (s) { s.el.value = ""; });
    apply(state);
    select("list", true);
  }

  tabs.forEach(function (tab, i) {
    var name = tab.id.slice(4);
    tab.addEventListener("click", function () { select(name, false); });
    tab.addEventListener("keydown", function (e) {
      var step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (step) select(tabs[(i + step + tabs.length) % tabs.length].id.slice(4), true);
    });
  });

  ["summary", "list", "products", "ciphers"].forEach(setup);
  var wanted = location.hash.slice(1);
  if (document.getElementById("tab-" + wanted)) select(wanted, false);
  document.documentElement.dataset.ready = "true";
})();
