/* Show the Print button only where it can work (it needs JavaScript). */
(function () {
  "use strict";
  var b = document.querySelector("[data-print]");
  if (!b || !window.print) return;
  b.hidden = false;
  b.addEventListener("click", function () { window.print(); });
})();
