"""Rate limits behind the reverse proxy (issue 20, item 1): the client's address is
the one the last proxy hop appended to X-Forwarded-For (PROXY_COUNT, werkzeug
ProxyFix), never what the client wrote itself; a per-card limit on "My account"; a
fire report over its limit is still kept and shown to staff, marked."""

from __future__ import annotations

import http.client
import http.server
import io
import threading
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from chargers import create_app
from chargers.extensions import db
from chargers.models import Alert, ProblemReport

from .brokers import free_port
from .conftest import bearer
from .webtools import csrf_from, login


class _Forwarder(http.server.BaseHTTPRequestHandler):
    """A reverse proxy hop as nginx does it: forwards the request to the upstream and
    appends the peer's address to X-Forwarded-For ($proxy_add_x_forwarded_for)."""

    upstream: tuple[str, int]
    protocol_version = "HTTP/1.1"

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "x-forwarded-for", "content-length")}
        seen = self.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{seen}, {self.client_address[0]}" if seen \
            else self.client_address[0]
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = _forward

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def proxied(app_config):
    """The app (PROXY_COUNT=1) served by werkzeug, behind a local forwarding proxy:
    the proxy's port."""
    app_config.update(PROXY_COUNT=1, WTF_CSRF_ENABLED=False,
                      LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="1000 per minute")
    app = create_app(app_config, config_name="testing")
    with app.app_context():
        db.create_all()
    servers = []
    app_port, proxy_port = free_port(), free_port()
    servers.append(make_server("127.0.0.1", app_port, app.wsgi_app, threaded=True))
    handler = type("Hop", (_Forwarder,), {"upstream": ("127.0.0.1", app_port)})
    servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", proxy_port), handler))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield proxy_port
    for s in servers:
        s.shutdown()
        s.server_close()
    with app.app_context():
        db.engine.dispose()


def _login_attempt(proxy_port: int, source: str, spoofed: str | None) -> int:
    """One failed login POST through the proxy, from the loopback address `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10,
                                      source_address=(source, 0))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if spoofed:
        headers["X-Forwarded-For"] = spoofed
    conn.request("POST", "/login", body=urlencode({"name": "nobody", "password": "x"}),
                 headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_limits_count_the_address_the_proxy_saw_not_a_spoofed_header(proxied):
    # The same client forging a fresh X-Forwarded-For each time is still one address.
    statuses = [_login_attempt(proxied, "127.0.0.2", f"198.51.100.{i}, 10.0.0.{i}")
                for i in range(4)]
    assert statuses[:3] == [200] * 3 and statuses[3] == 429
    # Another client behind the same proxy is not punished for it (without ProxyFix,
    # every client is the proxy's 127.0.0.1 and shares one count).
    assert _login_attempt(proxied, "127.0.0.3", None) == 200
    assert _login_attempt(proxied, "127.0.0.3", "127.0.0.2") == 200


def test_without_a_proxy_forwarded_headers_are_not_believed(app_config):
    app_config.update(WTF_CSRF_ENABLED=False, LOGIN_RATE_LIMIT="2 per minute")
    app = create_app(app_config, config_name="testing")  # PROXY_COUNT 0, the default
    with app.app_context():
        db.create_all()
    c = app.test_client()
    statuses = [c.post("/login", data={"name": "n", "password": "p"},
                       headers={"X-Forwarded-For": f"192.0.2.{i}"},
                       environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
                for i in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("bad", [-1, 6, "1"])
def test_proxy_count_is_checked_at_start(app_config, bad):
    app_config["PROXY_COUNT"] = bad
    with pytest.raises(RuntimeError, match="PROXY_COUNT"):
        create_app(app_config, config_name="testing")


def test_account_lookup_is_limited_per_card_across_addresses(app_config, admin, alley_with_pile,
                                                             app, client):
    _, token = admin
    r = client.post("/api/v1/accounts", headers=bearer(token), json={
        "alley": "lane", "cards": ["C-77"], "kind": "prepaid", "phone": "13800001234"})
    assert r.status_code == 201, r.json
    app.config.update(ACCOUNT_LOOKUP_RATE_LIMIT="100 per hour",
                      ACCOUNT_LOOKUP_CARD_RATE_LIMIT="3 per hour")

    def look(card, last4, addr):
        page = client.get("/a/lane/account", environ_base={"REMOTE_ADDR": addr})
        return client.post("/a/lane/account", environ_base={"REMOTE_ADDR": addr}, data={
            "csrf_token": csrf_from(page.get_data(as_text=True)), "card": card,
            "phone_last4": last4})

    for i in range(3):  # three guesses from three addresses
        assert look("C-77", f"000{i}", f"198.51.100.{i}").status_code == 200
    assert look(" c-77 ", "1234", "198.51.100.50").status_code == 429  # the right one, too late
    assert look("C-78", "0000", "198.51.100.50").status_code == 200  # another card: fine


def _report(client, kind: str, addr: str):
    page = client.get("/p/P-1/report", environ_base={"REMOTE_ADDR": addr})
    return client.post("/p/P-1/report", content_type="multipart/form-data",
                       environ_base={"REMOTE_ADDR": addr}, data={
                           "csrf_token": csrf_from(page.get_data(as_text=True)), "port": "1",
                           "kind": kind, "photo": (io.BytesIO(b""), "")})


def test_a_fire_report_over_the_limit_is_kept_marked_and_shown(app_config, app, client, admin,
                                                               alley_with_pile):
    app.config["REPORT_RATE_LIMIT"] = "2 per hour"
    addr = "203.0.113.77"
    assert [_report(client, "other", addr).status_code for _ in range(3)] == [302, 302, 429]
    # A burning smell from the same, already limited, connection: never silenced.
    statuses = [_report(client, "burning", addr).status_code for _ in range(3)]
    assert statuses == [302, 302, 302]
    with app.app_context():
        fire = db.session.scalars(select(ProblemReport).where(ProblemReport.kind == "burning")
                                  .order_by(ProblemReport.id)).all()
        assert [r.over_limit for r in fire] == [False, False, True]
        alert = db.session.get(Alert, fire[-1].alert_id)
        assert alert.code == "report_burning" and alert.severity == "critical"
        assert alert.count == 3
        alert_id = alert.id
    staff = app.test_client()
    login(staff, "root")
    html = staff.get(f"/staff/alerts/{alert_id}?lang=en").get_data(as_text=True)
    assert html.count("over the report limit of its connection") == 1
