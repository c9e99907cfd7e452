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
    from chargers.services.alerts import lifecycle as alerts

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


def chromium_dom(url: str, profile, budget_ms: int = 3000) -> tuple[str, list[str]]:
    """Load `url` in headless Chromium at phone size; (DOM, lines the CSP complained about)."""
    result = subprocess.run([
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--window-size=390,844", f"--virtual-time-budget={budget_ms}", "--dump-dom", url,
    ], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    blocked = [line for line in result.stderr.splitlines()
               if "Content Security Policy" in line or "Refused to" in line]
    return result.stdout, blocked


def test_smoke_on_one_port_turns_the_whole_pile_unsafe_with_a_banner(
        served, app, alley_with_pile, tmp_path):
    """A smoke alarm on port 2 of a pile whose other ports are free: on a phone, the
    alley page and the pile's QR page show the banner and not one free port."""
    from datetime import UTC, datetime

    from chargers import settings
    from chargers.extensions import db
    from chargers.models import Pile
    from chargers.services.alerts import lifecycle as alerts

    base, hits, _ = served
    with app.app_context():
        set_ports("P-1", ["available", "available", "charging", "available"])
        now = datetime.now(UTC)
        alerts.on_fault(db.session.get(Pile, "P-1"), 2, "smoke", True, None, None, now, now,
                        rules=settings.alerts(app.config))
        db.session.commit()
    dom, blocked = chromium_dom(f"{base}/a/lane?lang=en", tmp_path / "p1")
    assert blocked == []
    assert re.findall(r'data-state="(\w+)"', dom) == ["fault"] * 4
    assert re.search(r'<div class="fire-banner[^"]*" role="alert"', dom)
    assert "P-1: smoke alarm" in dom and "Keep away from the whole pile" in dom
    assert re.search(r'class="big zero" data-free="0">0<', dom)
    dom, blocked = chromium_dom(f"{base}/p/P-1?lang=en", tmp_path / "p2")
    assert blocked == [] and 'class="fire-banner' in dom and "(port 2)" in dom
