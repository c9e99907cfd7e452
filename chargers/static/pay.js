// The order page: ask our server for the order's state every 2 s until it is paid or
// closed (the provider's redirect back proves nothing); inside WeChat, the JSAPI button
// opens WeChat's own payment sheet with the parameters our server signed.
(function () {
  var box = document.getElementById("pay-state");
  if (!box) return;
  function show(state) {
    box.dataset.state = state;
    box.querySelectorAll(".pay-state").forEach(function (p) {
      p.hidden = !p.classList.contains("pay-" + state);
    });
    if (state !== "pending") {
      document.querySelectorAll(".qr, #wx-pay").forEach(function (e) { e.hidden = true; });
    }
  }
  function poll() {
    if (box.dataset.state !== "pending") return;
    fetch(box.dataset.stateUrl, {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (d) { show(d.state); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
  // Alipay's page or WeChat Pay's H5 page: opened at once (the link stays for a retry).
  var go = document.getElementById("pay-go");
  if (go && !sessionStorage.getItem("went:" + go.dataset.go)) {
    sessionStorage.setItem("went:" + go.dataset.go, "1");
    window.location.assign(go.dataset.go);
  }
  var btn = document.getElementById("wx-pay");
  var params = document.getElementById("wx-params");
  if (btn && params) {
    btn.addEventListener("click", function () {
      if (typeof WeixinJSBridge === "undefined") return;
      WeixinJSBridge.invoke("getBrandWCPayRequest", JSON.parse(params.textContent),
                            function () { poll(); });
    });
  }
})();
