/* The service worker of "Tell me when a port is free" (notify-free.js): only there for
   its registration's showNotification, which Android browsers require (they refuse
   `new Notification()` in a page). It caches nothing and sees no request; a tap on the
   notification brings back the alley page it came from. */
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true })
    .then(function (open) {
      for (var i = 0; i < open.length; i++) {
        if (open[i].url === url && "focus" in open[i]) return open[i].focus();
      }
      return self.clients.openWindow(url);
    }));
});
