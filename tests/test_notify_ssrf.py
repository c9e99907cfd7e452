"""Webhook URLs are typed by staff: in production the worker refuses to post to a
private or loopback address, and never follows a redirect."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chargers import settings
from chargers.services.alerts.notify import DeliveryError, send_webhook


class _Receiver:
    def __init__(self, status: int = 200, location: str | None = None):
        self.hits = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(b'{"errcode": 0}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.close()


def test_private_address_refused_unless_allowed(app, app_ctx, receiver):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    with pytest.raises(DeliveryError, match="non-public"):
        send_webhook(receiver.url, {"msgtype": "text"}, settings.delivery(app.config))
    assert receiver.hits == 0
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    send_webhook(receiver.url, {"msgtype": "text"}, settings.delivery(app.config))
    assert receiver.hits == 1


def test_redirect_is_not_followed(app, app_ctx, receiver):
    redirecting = _Receiver(status=302, location=receiver.url)
    try:
        with pytest.raises(DeliveryError, match="HTTP 302"):
            send_webhook(redirecting.url, {"msgtype": "text"}, settings.delivery(app.config))
        assert redirecting.hits == 1 and receiver.hits == 0
    finally:
        redirecting.close()


def test_production_refuses_private_by_default():
    from config import ProductionConfig

    assert ProductionConfig.WEBHOOK_ALLOW_PRIVATE is False
