(function () {
  "use strict";
  // Filters findings by severity and free text. State can come from the URL fragment:
  // #severity=high,critical&q=sql (shareable links, and how the browser test drives it).
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-severity-filter]"));
  var search = document.getElementById("search");
  var findings = Array.prototype.slice.call(document.querySelectorAll("details.finding"));
  var none = document.getElementById("no-match");
  var shown = document.getElementById("shown-count");

  function apply() {
    var allowed = {};
    boxes.forEach(function (b) { if (b.checked) { allowed[b.value] = true; } });
    var q = search.value.trim().toLowerCase();
    var count = 0;
    findings.forEach(function (f) {
      var ok = allowed[f.getAttribute("data-severity")] === true &&
        (q === "" || f.textContent.toLowerCase().indexOf(q) !== -1);
      f.hidden = !ok;
      if (ok) { count += 1; }
    });
    none.hidden = count !== 0 || findings.length === 0;
    shown.textContent = String(count);
    document.body.setAttribute("data-shown", String(count));
    document.body.setAttribute("data-filter", boxes.filter(function (b) { return b.checked; })
      .map(function (b) { return b.value; }).join(","));
  }

  function fromFragment() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var severity = params.get("severity");
    if (severity !== null) {
      var wanted = severity.toLowerCase().split(",");
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.value) !== -1; });
    }
    var q = params.get("q");
    if (q !== null) { search.value = q; }
  }

  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  window.addEventListener("hashchange", function () { fromFragment(); apply(); });
  fromFragment();
  apply();
}());
