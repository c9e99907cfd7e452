// Staff alerts page: refresh the list every few seconds without a reload.
// The page works without this script; it only replaces #alert-list from the feed.
(function () {
  "use strict";
  var box = document.getElementById("alert-list");
  if (!box || !window.fetch) { return; }
  var every = parseInt(box.getAttribute("data-every"), 10) || 5000;
  var counts = document.getElementById("alert-counts");

  function busy() {
    // Do not pull the list from under someone typing or pressing a button in it.
    var el = document.activeElement;
    return el && box.contains(el) && /^(TEXTAREA|INPUT|SELECT|BUTTON)$/.test(el.tagName);
  }

  function refresh() {
    if (document.hidden || busy()) { return; }
    fetch(box.getAttribute("data-feed"), {credentials: "same-origin",
                                           headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || busy()) { return; }
        box.innerHTML = data.html;
        if (counts && data.counts) {
          var spans = counts.querySelectorAll(".sev");
          ["critical", "major", "minor", "warning"].forEach(function (s, i) {
            if (spans[i]) {
              spans[i].textContent = spans[i].textContent.replace(/\d+\s*$/, data.counts[s]);
            }
          });
        }
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
