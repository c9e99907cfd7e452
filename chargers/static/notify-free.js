/* "Tell me when a port is free": while the alley page is open and the switch is on, ring
   (a short beep made here, no sound file), vibrate and show a browser notification when
   the free count, refreshed in place by live.js, goes from zero to above zero. The
   notification goes through a service worker's registration where there is one
   (notify-sw.js; Android needs it), else through `new Notification`. Nothing leaves the
   page; without JavaScript the switch stays hidden. */
(function () {
  "use strict";
  var box = document.querySelector("[data-notify-free]");
  if (!box) return;
  var toggle = box.querySelector("[data-notify-toggle]");
  var status = box.querySelector("[data-notify-status]");
  var on = false, audio = null, worker = null, last = freeNow();
  box.hidden = false;

  function freeNow() {
    var el = document.querySelector("[data-free]");
    return el ? parseInt(el.getAttribute("data-free"), 10) || 0 : 0;
  }
  function say(text) { status.textContent = text || ""; }
  function granted() { return !!window.Notification && Notification.permission === "granted"; }

  function beep() {
    if (!audio) return;
    [0, 0.35].forEach(function (t) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      osc.connect(gain); gain.connect(audio.destination);
      gain.gain.setValueAtTime(0.25, audio.currentTime + t);
      osc.start(audio.currentTime + t); osc.stop(audio.currentTime + t + 0.2);
    });
  }

  function ring() {
    try { beep(); } catch (e) { /* no sound: the notification still shows */ }
    if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
    if (granted()) {
      var options = { body: box.dataset.body, tag: "port-free", data: { url: location.href } };
      if (worker) {
        worker.showNotification(box.dataset.title, options).catch(function () {});
      } else {
        try { new Notification(box.dataset.title, options); }
        catch (e) { /* no service worker here: the sound and text remain */ }
      }
    }
    say(box.dataset.fired);
  }

  toggle.addEventListener("change", function () {
    on = toggle.checked;
    last = freeNow();
    if (!on) { say(""); return; }
    // Android shows notifications only through a service worker's registration.
    if (!worker && "serviceWorker" in navigator && box.dataset.worker) {
      navigator.serviceWorker.register(box.dataset.worker).then(function (r) { worker = r; },
                                                                function () { worker = null; });
    }
    // Made during the tap, so the browser lets it play later.
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) { try { audio = new Ctx(); } catch (e) { audio = null; } }
    var done = function () {
      say(last > 0 ? box.dataset.already : (granted() ? box.dataset.on : box.dataset.soundOnly));
    };
    if (window.Notification && Notification.permission === "default") {
      Notification.requestPermission().then(done, done);
    } else { done(); }
  });

  document.addEventListener("live:updated", function () {
    var n = freeNow();
    if (on && last === 0 && n > 0) ring();
    last = n;
  });
})();
