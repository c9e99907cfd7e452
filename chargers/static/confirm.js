// Staff pages: a button whose form has data-confirm asks before it acts (reset a
// pile, take a whole pile out of service, remove a contact). Without JavaScript the
// form simply submits. Delegated, so lists refreshed in place are covered too.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  }, true);
})();
