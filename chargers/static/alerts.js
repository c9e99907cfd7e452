// Staff alerts page: refresh the list every few seconds without a reload.
// The page works without this script; it only replaces #alert-list from the feed.
(function () {
  "use strict";
  var box = document.getElementById("alert-list");
  if (!box || !window.fetch) { return; }
  var every = parseInt(box.getAttribute("data-every"), 10) || 5000;
  var counts = document.getElementById("alert-counts");
  var title = document.title;

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
        if (counts && data.counts_html) { counts.innerHTML = data.counts_html; }
        // A tab in the background still shows how many wait for someone.
        var waiting = data.counts ? data.counts.unacknowledged : 0;
        document.title = waiting ? "(" + waiting + ") " + title : title;
        navCount(waiting, data.counts ? data.counts.critical : 0);
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  function navCount(waiting, critical) {
    // The badge on the header's Alerts tab follows the list too.
    var tab = document.querySelector('.staff-nav a[href$="/staff/alerts"]');
    if (!tab) { return; }
    var badge = tab.querySelector(".count");
    if (!waiting) { if (badge) { badge.remove(); } return; }
    if (!badge) {
      badge = document.createElement("span");
      tab.appendChild(document.createTextNode(" "));
      tab.appendChild(badge);
    }
    badge.className = critical ? "count crit" : "count";
    badge.textContent = waiting;
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
