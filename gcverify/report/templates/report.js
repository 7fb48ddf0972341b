// gcverify HTML report: sort and filter the matrix, show a row's detail. No libraries, no
// network: the page works opened from disk. A row's detail is cloned from its <template>
// when selected; #case=<row id> in the address opens it directly (a link to one row).
(function () {
  "use strict";
  var table = document.getElementById("matrix");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var search = document.getElementById("search");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-column]"));
  var shown = document.getElementById("shown");
  var detail = document.getElementById("detail");

  function cell(tr, column) { return tr.cells[column].getAttribute("data-sort") || ""; }

  function applyFilters() {
    var text = search.value.trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (tr) {
      var ok = selects.every(function (s) {
        return !s.value || cell(tr, Number(s.getAttribute("data-column"))) === s.value;
      }) && (!text || tr.textContent.toLowerCase().indexOf(text) >= 0);
      tr.hidden = !ok;
      if (ok) { visible += 1; }
    });
    shown.textContent = visible + " of " + rows.length + " rows";
  }

  function sortBy(th, column) {
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = !th.classList.contains("asc");
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.classList.remove("asc", "desc"); });
    th.classList.add(ascending ? "asc" : "desc");
    var keyed = rows.map(function (tr, i) { return [cell(tr, column), i, tr]; });
    keyed.sort(function (a, b) {
      var x = a[0], y = b[0], order;
      if (x === "" || y === "") {  // empty cells last, whatever the direction
        order = (x === "") - (y === "");
        return order || a[1] - b[1];
      }
      order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return (ascending ? order : -order) || a[1] - b[1];
    });
    keyed.forEach(function (k) { body.appendChild(k[2]); });
  }

  function open(tr) {
    var template = document.getElementById("detail-" + tr.getAttribute("data-index"));
    detail.replaceChildren(template.content.cloneNode(true));
    rows.forEach(function (r) { r.classList.toggle("selected", r === tr); });
    history.replaceState(null, "", "#case=" + encodeURIComponent(tr.getAttribute("data-id")));
    detail.querySelector(".close").addEventListener("click", close);
    detail.scrollTop = 0;
  }

  function close() {
    detail.replaceChildren();
    rows.forEach(function (r) { r.classList.remove("selected"); });
    history.replaceState(null, "", location.pathname + location.search);
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    th.addEventListener("click", function () { sortBy(th, column); });
  });
  rows.forEach(function (tr) {
    tr.addEventListener("click", function () { open(tr); });
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") { open(tr); } });
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { close(); } });
  search.addEventListener("input", applyFilters);
  selects.forEach(function (s) { s.addEventListener("change", applyFilters); });

  var wanted = location.hash.indexOf("#case=") === 0 ? decodeURIComponent(location.hash.slice(6)) : "";
  var first = rows.filter(function (tr) { return tr.getAttribute("data-id") === wanted; })[0];
  if (first) { open(first); }
  applyFilters();
  document.body.setAttribute("data-ready", "true");
}());
