"""The residents' page in a real headless Chromium (skipped when none is installed,
failed under CHARGERS_TEST_STRICT=1):
the CSP blocks nothing the page needs, and live.js refreshes the page in place."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from .brokers import free_port, skip_unless
from .webtools import set_ports

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None) or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.fixture(autouse=True)
def _chromium():
    skip_unless(CHROMIUM, "headless Chromium")


@pytest.fixture
def served(app):
    """The app on a free local port, with a list of the paths it was asked for."""
    hits: list[str] = []
    before_second_load = []  # callables run once, just before /a/lane is served again

    def record(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/a/lane" and "/a/lane" in hits:
            while before_second_load:
                with app.app_context():
                    before_second_load.pop()()
        hits.append(path)
        return app.wsgi_app(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, record, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", hits, before_second_load
    server.shutdown()
    thread.join(timeout=5)


def test_alley_page_refreshes_in_place_and_csp_blocks_nothing(app, served, alley_with_pile,
                                                              tmp_path):
    base, hits, before_second_load = served
    with app.app_context():
        set_ports("P-1", ["available", "charging", "finishing", "faulted"])
    # While the page is open, port 1 gets taken: the page must show it without a reload.
    before_second_load.append(
        lambda: set_ports("P-1", ["charging", "charging", "finishing", "faulted"]))
    # Virtual time: Chromium runs the page's timers for 65 s without waiting for them.
    result = subprocess.run([
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=65000", "--dump-dom", f"{base}/a/lane?lang=en",
    ], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    blocked = [line for line in result.stderr.splitlines()
               if "Content Security Policy" in line or "Refused to" in line]
    assert blocked == []
    assert {"/static/app.css", "/static/live.js"} <= set(hits)
    assert hits.count("/a/lane") >= 2  # the first load, then live.js fetching it again
    dom = result.stdout
    assert re.findall(r'data-state="(\w+)"', dom) == ["in_use", "in_use", "finished", "fault"]
    assert "stale" not in re.search(r'<p class="updated[^"]*"', dom).group(0)


def test_staff_alerts_page_in_chromium_refreshes_and_csp_blocks_nothing(
        app, admin, alley_with_pile, tmp_path):
    """Logged in (the session cookie of a form login, sent by the browser's first
    request), the alerts page loads its scripts under the CSP and alerts.js pulls the
    feed; a fault raised while the page is open shows without a reload."""
    from datetime import UTC, datetime

    from chargers import settings
    from chargers.extensions import db
    from chargers.models import Pile
    from chargers.services import alerts

    from .webtools import login

    agent = "chargers-test-browser"  # Flask-Login's strong protection checks the agent
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": "127.0.0.1"})
    assert login(client, "root").status_code == 302
    cookie = f"session={client.get_cookie('session').value}"
    hits: list[str] = []

    def logged_in(environ, start_response):
        environ["HTTP_USER_AGENT"] = agent
        environ.setdefault("HTTP_COOKIE", cookie)
        if environ["PATH_INFO"] == "/staff/alerts/feed" and "/staff/alerts/feed" not in hits:
            with app.app_context():  # the second look at the list finds a new alert
                now = datetime.now(UTC)
                alerts.on_fault(db.session.get(Pile, "P-1"), 3, "smoke", True, None, None, now, now,
                                rules=settings.alerts(app.config))
                db.session.commit()
        hits.append(environ["PATH_INFO"])
        return app.wsgi_app(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, logged_in, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=12000", "--dump-dom",
            f"http://127.0.0.1:{port}/staff/alerts?lang=en",
        ], capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    blocked = [line for line in result.stderr.splitlines()
               if "Content Security Policy" in line or "Refused to" in line]
    assert blocked == []
    assert {"/static/app.css", "/static/alerts.css", "/static/alerts.js",
            "/static/confirm.js", "/staff/alerts/feed"} <= set(hits)
    dom = result.stdout
    assert "Smoke" in dom and 'class="alert-card sev-critical st-active"' in dom
    assert re.search(r'<span class="count crit">1</span>', dom)  # the header's tab follows
