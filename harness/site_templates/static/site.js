// harness leaderboard: sortable and filterable tables. Pages are complete without this script.
(function () {
  "use strict";

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
      button.addEventListener("click", function () { sortTable(table, th, index); });
    });
  }

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
    var output = form.querySelector(".filter-count");
    if (output) output.textContent = active.length ? "showing " + shown + " of " + total + " rows" : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("form.filters").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("input", function () { applyFilters(form); });
      form.addEventListener("change", function () { applyFilters(form); });
      form.addEventListener("submit", function (event) { event.preventDefault(); });
    });
  });
})();
