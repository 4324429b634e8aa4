// harness leaderboard: sortable, filterable, paged tables. Pages are complete without this script:
// a long table prints its first rows, and its data file (data-rows-src) holds every row.
(function () {
  "use strict";

  // ---- long tables: rows from the page's data file ------------------------------------------------

  var waiting = {};  // table id -> callbacks waiting for its rows
  window.harnessRows = function (id, rows) {
    var table = document.getElementById(id);
    if (!table) return;
    table.tBodies[0].innerHTML = rows.join("");
    table.setAttribute("data-loaded", "true");
    (waiting[id] || []).forEach(function (done) { done(); });
    delete waiting[id];
    document.dispatchEvent(new CustomEvent("harness:rows", { detail: id }));
  };

  function isLong(table) {
    return table.hasAttribute("data-rows-src") &&
      parseInt(table.getAttribute("data-total"), 10) > table.tBodies[0].rows.length;
  }

  function withAllRows(table, done) {
    if (!isLong(table) || table.hasAttribute("data-loaded")) { done(); return; }
    if (waiting[table.id]) { waiting[table.id].push(done); return; }
    waiting[table.id] = [done];
    var script = document.createElement("script");
    script.src = table.getAttribute("data-rows-src");
    script.onerror = function () {
      delete waiting[table.id];
      var pager = table.harnessPager;
      if (pager) pager.status.textContent = "Could not load the other rows (" + script.src + ").";
    };
    document.head.appendChild(script);
  }

  // ---- paging: rows not hidden by a filter, a page at a time ----------------------------------------

  function pageRows(table) {
    var pager = table.harnessPager;
    if (!pager) return;
    var size = pager.size, page = pager.page;
    var visible = Array.prototype.filter.call(table.tBodies[0].rows, function (row) {
      return !row.hidden && !row.classList.contains("pick-out");
    });
    var total = table.hasAttribute("data-loaded") || !isLong(table) ? visible.length : parseInt(table.getAttribute("data-total"), 10);
    var pages = Math.max(1, Math.ceil(total / size));
    if (page >= pages) page = pager.page = pages - 1;
    visible.forEach(function (row, i) {
      row.classList.toggle("paged-out", i < page * size || i >= (page + 1) * size);
    });
    var first = total ? page * size + 1 : 0, last = Math.min(total, (page + 1) * size);
    pager.status.textContent = "Rows " + first + "–" + last + " of " + total;
    pager.prev.disabled = page === 0;
    pager.next.disabled = page >= pages - 1;
  }

  function makePager(table) {
    var size = parseInt(table.getAttribute("data-page-size"), 10);
    if (!size || !table.hasAttribute("data-rows-src") || parseInt(table.getAttribute("data-total"), 10) <= size) return;
    var nav = document.createElement("nav");
    nav.className = "pager";
    nav.setAttribute("aria-label", "Pages of this table");
    function button(label, onClick) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", onClick);
      nav.appendChild(b);
      return b;
    }
    var pager = { size: size, page: 0 };
    pager.prev = button("‹ Previous", function () { pager.page -= 1; pageRows(table); });
    pager.status = document.createElement("output");
    pager.status.setAttribute("aria-live", "polite");
    nav.appendChild(pager.status);
    pager.next = button("Next ›", function () {
      withAllRows(table, function () { pager.page += 1; pageRows(table); });
    });
    table.harnessPager = pager;
    var wrap = table.closest(".scroll") || table;
    wrap.parentNode.insertBefore(nav, wrap.nextSibling);
    var note = wrap.parentNode.querySelector(".more-rows");
    if (note && note.previousElementSibling === nav) note.hidden = true;
    else if (nav.nextElementSibling && nav.nextElementSibling.classList.contains("more-rows")) nav.nextElementSibling.hidden = true;
    pageRows(table);
  }

  // ---- sorting ----------------------------------------------------------------------------------------

  function cellValue(row, index, kind) {
    var cell = row.cells[index];
    if (!cell) return null;
    if (kind === "num") {
      var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.replace(/[^0-9.eE+-]/g, "");
      if (raw === "" || raw === null) return null;
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortTable(table, th, index) {
    var kind = th.getAttribute("data-sort");
    var current = th.getAttribute("aria-sort");
    var dir = current ? (current === "ascending" ? "descending" : "ascending")
                      : (th.getAttribute("data-first") === "desc" ? "descending" : "ascending");
    var sign = dir === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, value: cellValue(row, index, kind), i: i };
    });
    rows.sort(function (a, b) {
      if (a.value === null && b.value === null) return a.i - b.i;
      if (a.value === null) return 1;  // missing values last in either direction
      if (b.value === null) return -1;
      if (a.value < b.value) return -sign;
      if (a.value > b.value) return sign;
      return a.i - b.i;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r.row); });
    body.appendChild(frag);
    table.querySelectorAll("thead th[aria-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    if (table.harnessPager) { table.harnessPager.page = 0; pageRows(table); }
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      if (!th.hasAttribute("data-sort")) return;
      var button = document.createElement("button");
      button.type = "button";
      if (th.querySelector("a")) {
        // Keep the header link a link (no interactive content inside a button): add a separate sort control.
        button.setAttribute("aria-label", "Sort by " + th.textContent.trim());
        th.appendChild(button);
      } else {
        while (th.firstChild) button.appendChild(th.firstChild);
        th.appendChild(button);
      }
      button.addEventListener("click", function () {
        withAllRows(table, function () { sortTable(table, th, index); });
      });
    });
  }

  // ---- filters ----------------------------------------------------------------------------------------

  function applyFilters(form) {
    var active = [];
    form.querySelectorAll("[data-key]").forEach(function (control) {
      var value = control.value.trim().toLowerCase();
      if (value) active.push([control.getAttribute("data-key"), value]);
    });
    function matches(el, rows) {
      return active.every(function (pair) {
        var attr = el.getAttribute("data-" + pair[0]);
        if (attr === null) return true;  // this element is not described by that key
        return pair[0] === "name" && rows ? attr.indexOf(pair[1]) !== -1 : attr === pair[1];
      });
    }
    var shown = 0, total = 0;
    document.querySelectorAll(".filter-section").forEach(function (section) {
      section.hidden = !matches(section, false);
    });
    document.querySelectorAll("table.filterable tbody tr").forEach(function (row) {
      var ok = matches(row, true);
      row.hidden = !ok;
      var section = row.closest(".filter-section");
      if (!section || !section.hidden) { total += 1; if (ok) shown += 1; }
    });
    document.querySelectorAll("table.filterable").forEach(function (table) {
      if (table.harnessPager) { table.harnessPager.page = 0; pageRows(table); }
    });
    var output = form.querySelector(".filter-count");
    if (output) output.textContent = active.length ? "showing " + shown + " of " + total + " rows" : "";
  }

  function filterAllRows(form) {
    // A filter must see every row: load the long tables first (once), then filter.
    var tables = Array.prototype.filter.call(document.querySelectorAll("table.filterable"), isLong);
    var left = tables.length;
    if (!left) { applyFilters(form); return; }
    tables.forEach(function (table) {
      withAllRows(table, function () { left -= 1; if (!left) applyFilters(form); });
    });
  }

  // ---- pick form: harness pick's rule on the numbers embedded at build time ---------------------------

  function pickNumber(form, key, scale) {
    var raw = form.querySelector("[data-pick='" + key + "']").value.trim();
    if (raw === "") return null;
    var n = parseFloat(raw);
    return isNaN(n) ? null : n * scale;
  }

  // The recommendation for constraints {latency, at, params, memory, hw, protocol}: returns
  // {eligible: [indices], best, group: [indices], choice} (choice null when nothing fits).
  function pickModel(data, q) {
    var at = q.at === "p95" ? 1 : 0, hw = q.hw === "" || q.hw === null ? null : String(q.hw);
    var cands = data.candidates;
    function timing(c) { return hw !== null && c[4][hw] ? c[4][hw] : null; }
    function latency(c) { var t = timing(c); return t ? t[at] : null; }
    function eligible(c) {
      if (q.protocol && c[1] !== q.protocol) return false;
      var t = timing(c);
      if (q.latency !== null && (t === null || t[at] === null || t[at] > q.latency)) return false;
      if (q.params !== null && (c[3] === null || c[3] > q.params)) return false;
      // harness pick: peak MiB * 2**20 against a limit in bytes
      if (q.memory !== null && (t === null || t[2] === null || t[2] * 1048576 > q.memory)) return false;
      return true;
    }
    var ok = [];
    cands.forEach(function (c, i) { if (eligible(c)) ok.push(i); });
    if (!ok.length) return { eligible: ok, best: null, group: [], choice: null };
    var best = ok[0];  // candidates are embedded best first
    var inGroup = {};
    inGroup[best] = true;
    (data.tests[String(best)] || []).forEach(function (pair) {
      if (pair[1] >= data.alpha && eligible(cands[pair[0]])) inGroup[pair[0]] = true;
    });
    var group = ok.filter(function (i) { return inGroup[i]; });
    var untested = data.tests[String(best)] === undefined;
    function cost(i) {
      var c = cands[i], lat = latency(c);
      return [lat === null || lat === undefined ? Infinity : lat, c[3] === null ? Infinity : c[3], data.higherIsBetter ? -c[2] : c[2]];
    }
    var choice = group.reduce(function (a, b) {
      var ca = cost(a), cb = cost(b);
      for (var k = 0; k < 3; k++) { if (cb[k] < ca[k]) return b; if (cb[k] > ca[k]) return a; }
      return a;
    });
    return { eligible: ok, best: best, group: group, choice: choice, untested: untested };
  }
  window.harnessPick = pickModel;

  function pickQuery(form) {
    return {
      latency: pickNumber(form, "latency", 1),
      at: form.querySelector("[data-pick='at']").value,
      params: pickNumber(form, "params", 1e6),
      memory: pickNumber(form, "memory", 1e6),
      hw: form.querySelector("[data-pick='hw']").value,
      protocol: form.querySelector("[data-pick='protocol']").value
    };
  }

  function applyPick(form, data) {
    var q = pickQuery(form), result = pickModel(data, q);
    var hide = form.querySelector("[data-pick='hide']").checked;
    var eligible = {}, group = {};
    result.eligible.forEach(function (i) { eligible[i] = true; });
    result.group.forEach(function (i) { group[i] = true; });
    document.querySelectorAll("tr[data-cand]").forEach(function (row) {
      var i = row.getAttribute("data-cand");
      row.classList.toggle("pick-out", hide && !eligible[i]);
      row.classList.toggle("pick-tie", !!group[i] && String(result.choice) !== i);
      row.classList.toggle("pick-choice", String(result.choice) === i);
    });
    document.querySelectorAll("table[data-page-size]").forEach(pageRows);
    var out = form.querySelector(".pick-result");
    var metric = data.metric;
    function name(i) { return data.candidates[i][0] + " [" + data.candidates[i][1] + "]"; }
    out.setAttribute("data-group", JSON.stringify(result.group.map(name)));
    if (result.choice === null) {
      out.textContent = "No candidate satisfies these constraints (" + data.candidates.length + " considered).";
      out.setAttribute("data-choice", "");
      return;
    }
    var c = data.candidates[result.choice];
    var t = q.hw !== "" && c[4][q.hw] && c[4][q.hw][q.at === "p95" ? 1 : 0] !== null ? c[4][q.hw] : null;
    var tied = result.group.filter(function (i) { return i !== result.choice; }).map(function (i) {
      return data.candidates[i][0] + " [" + data.candidates[i][1] + "]";
    });
    out.textContent = "Recommended: " + c[0] + " [" + c[1] + "], " + metric + " " + c[2].toFixed(4) +
      (t ? ", " + q.at + " " + t[q.at === "p95" ? 1 : 0].toPrecision(3) + " ms" : ", no timing on this hardware") +
      ". " + result.eligible.length + " of " + data.candidates.length + " candidates fit; " +
      (result.untested ? "its ties were not tested when the site was built (too many candidates; harness pick tests them)." :
       tied.length ? "tied with it: " + tied.join(", ") + "." : "no other eligible candidate is tied with the best.");
    out.setAttribute("data-choice", c[0] + " [" + c[1] + "]");
  }

  function makePickForm(form) {
    var holder = document.getElementById("pick-data");
    if (!holder) return;
    var data = JSON.parse(holder.textContent);
    form.hidden = false;
    var update = function () {
      // The marks must reach every row: load the long tables first.
      var tables = Array.prototype.filter.call(document.querySelectorAll("table[data-rows-src]"), isLong);
      var left = tables.length;
      if (!left) { applyPick(form, data); return; }
      tables.forEach(function (table) { withAllRows(table, function () { left -= 1; if (!left) applyPick(form, data); }); });
    };
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); update(); });
    document.addEventListener("harness:rows", function () { applyPick(form, data); });
    applyPick(form, data);
  }

  window.harnessTables = { withAllRows: withAllRows, pageRows: pageRows };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("table[data-page-size]").forEach(makePager);
    document.querySelectorAll("form.pick").forEach(makePickForm);
    document.querySelectorAll("form.filters").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("input", function () { filterAllRows(form); });
      form.addEventListener("change", function () { filterAllRows(form); });
      form.addEventListener("submit", function (event) { event.preventDefault(); });
    });
  });
})();
