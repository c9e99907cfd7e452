/* Progressive enhancement for the residents' pages: refresh the live part in place.
   Without JavaScript a <noscript> meta refresh reloads the page instead. The server
   renders the page; we fetch the same address and swap the [data-live] block, so the
   words, translations and times come from one place. Polling pauses while the page is
   hidden (saves a phone's battery and data) and runs at once when it is shown again. */
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !window.fetch || !window.DOMParser) return;
  // Residents' pages ask for 30 s; a staff control page for a few seconds, so a
  // command is seen going pending → sent → done.
  var every = Math.max(3, parseInt(root.getAttribute("data-live"), 10) || 30) * 1000;
  var timer = null, busy = false;

  function markStale() {
    var s = document.querySelector("[data-live-status]");
    if (s) s.classList.add("stale");
  }

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store",
                                  headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        var cur = document.querySelector("[data-live]");
        if (fresh && cur) cur.replaceWith(document.importNode(fresh, true));
        if (doc.title) document.title = doc.title;
        // Others (notify-free.js) follow the fresh numbers.
        document.dispatchEvent(new CustomEvent("live:updated"));
      })
      .catch(markStale)
      .then(function () { busy = false; });
  }

  function start() { stop(); timer = window.setInterval(refresh, every); }
  function stop() { if (timer) window.clearInterval(timer); timer = null; }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { refresh(); start(); }
  });
  start();
})();
