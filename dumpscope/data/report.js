// The one script of a dumpscope report: sorts the bucket table by a column header clicked, or by
// the page's fragment (report.html#sort=dumps, #sort=last-seen-asc), so a sorted view can be linked.
// Cells sort by their data-value attribute (numbers for numeric columns), else by their text.
(function () {
  "use strict";
  var table = document.getElementById("bucket-table");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;

  function value(row, col, numeric) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-value");
    if (v === null) {
      v = cell.textContent;
    }
    return numeric ? parseFloat(v) : v;
  }

  function sortBy(th, col, descending) {
    var numeric = th.getAttribute("data-sort") === "num";
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col, numeric);
      var y = value(b, col, numeric);
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  Array.prototype.forEach.call(heads, function (th, col) {
    if (!th.getAttribute("data-sort")) {
      return;
    }
    th.addEventListener("click", function () {
      sortBy(th, col, th.getAttribute("aria-sort") !== "descending");
    });
  });

  var wanted = /^#sort=([a-z-]+?)(-asc)?$/.exec(window.location.hash);
  if (wanted) {
    Array.prototype.forEach.call(heads, function (th, col) {
      if (th.getAttribute("data-key") === wanted[1]) {
        sortBy(th, col, !wanted[2]);
      }
    });
  }
  document.documentElement.setAttribute("data-ready", "1");
}());
