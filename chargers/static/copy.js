/* A "copy" button (hidden without JavaScript): copies the text of the element named by
   its data-copy selector, and says so; where the clipboard API is missing, selects the
   text for a long-press copy instead. */
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var target = document.querySelector(btn.getAttribute("data-copy"));
    if (!target) return;
    btn.hidden = false;
    var label = btn.textContent;
    btn.addEventListener("click", function () {
      var text = target.textContent.trim();
      var done = function () {
        btn.textContent = btn.getAttribute("data-copied") || label;
        window.setTimeout(function () { btn.textContent = label; }, 2500);
      };
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(target);
        var sel = window.getSelection();
        sel.removeAllRanges(); sel.addRange(range);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, select);
      } else { select(); }
    });
  });
})();
