"""Whole flows in a real headless Chromium at phone size (390x844), driven with
Playwright against the app served on a free local port: a resident's report reaching
the staff alerts page. Playwright drives the system Chromium (Debian's /usr/bin/chromium in
CI: no browser download); skipped only where no Chromium is installed at all, and where
one is, a missing Playwright is a failure (requirements-dev.txt pins it), not a skip."""

from __future__ import annotations

import importlib
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from .brokers import free_port
from .webtools import set_ports

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()),
                None) or next((shutil.which(n) for n in ("chromium", "chromium-browser",
                                                         "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed")
playwright = (importlib.import_module("playwright.sync_api") if CHROMIUM
              else pytest.importorskip("playwright.sync_api"))
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live(app):
    """The app on a free local port: its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app.wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def phone(browser, blocked: list[str]):
    """A fresh phone-sized page (its own cookies) that records CSP complaints."""
    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.on("console", lambda m: blocked.append(m.text)
            if "Content Security Policy" in m.text or "Refused" in m.text else None)
    return page


def staff_login(page, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def test_a_residents_report_appears_on_the_staff_alerts_page(
        app, live, browser, admin, alley_with_pile, tmp_path):
    from .conftest import PASSWORD

    app.config["REPORT_PHOTO_DIR"] = str(tmp_path / "reports")
    with app.app_context():
        set_ports("P-1", ["available", "charging", "available", "available"])
    blocked: list[str] = []
    resident = phone(browser, blocked)
    resident.goto(f"{live}/p/P-1?lang=en")
    resident.click("text=Report a problem with this pile")
    resident.select_option("select[name=port]", "2")
    resident.check("input[name=kind][value=burning]")
    resident.fill("input[name=phone]", "13800001234")
    resident.click("main button[type=submit]")
    assert "your report was sent" in resident.inner_text("h1")
    assert resident.url.endswith("/p/P-1/report/sent")

    desk = phone(browser, blocked)
    staff_login(desk, live, "root", PASSWORD)
    desk.goto(f"{live}/staff/alerts?lang=en")
    card = desk.locator(".alert-card", has_text="Resident reports burning smell or smoke")
    assert card.count() == 1
    assert "critical" in card.first.get_attribute("class")
    card.first.locator("a").first.click()
    assert "13800001234" in desk.inner_text("main")
    assert blocked == []


def test_tell_me_when_a_port_is_free_rings_when_one_frees(app, live, browser, alley_with_pile):
    """The switch, on with notifications allowed: nothing while no port is free; when
    live.js brings a free port, the page says so (and shows a notification)."""
    with app.app_context():
        set_ports("P-1", ["charging"] * 4)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.grant_permissions(["notifications"], origin=live)
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text)
            if "Content Security Policy" in m.text or "Refused" in m.text else None)
    page.add_init_script("""
        window.__shown = [];
        window.Notification = class { constructor(t, o) { window.__shown.push([t, o.body]); }
            static get permission() { return "granted"; }
            static requestPermission() { return Promise.resolve("granted"); } };""")
    page.clock.install()
    page.goto(f"{live}/a/lane?lang=en")
    page.check("[data-notify-toggle]")
    assert "it will ring when a port is free" in page.inner_text("[data-notify-status]")
    page.clock.run_for(31_000)  # one refresh: still nothing free
    page.wait_for_timeout(300)
    assert page.evaluate("window.__shown") == []
    with app.app_context():
        set_ports("P-1", ["charging", "available", "charging", "charging"])
    page.clock.run_for(31_000)
    for _ in range(50):  # poll with a deadline (wait_for_function would need eval: CSP)
        if "just became free" in page.inner_text("[data-notify-status]"):
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)  # showNotification settles
    assert "A port just became free!" in page.inner_text("[data-notify-status]")
    # Through the service worker's registration (as Android requires), not the page's
    # Notification constructor.
    shown = page.evaluate("""async () => {
        const r = await navigator.serviceWorker.getRegistration("/static/notify-sw.js");
        return r ? (await r.getNotifications()).map(n => [n.title, n.body, n.data.url]) : null;
    }""")
    assert shown and shown[0][0] == "A charging port is free", shown
    assert shown[0][2].endswith("/a/lane?lang=en")
    assert page.evaluate("window.__shown") == []
    assert blocked == []


def test_admin_creates_a_staff_account_that_sees_only_its_alley(
        app, client, live, browser, admin, alley_with_pile):
    from .conftest import PASSWORD, bearer

    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other Lane"},
                headers=bearer(token))
    blocked: list[str] = []
    desk = phone(browser, blocked)
    staff_login(desk, live, "root", PASSWORD)
    desk.goto(f"{live}/staff/?lang=en")
    desk.click("text=Accounts")
    desk.click("text=Add an account")
    desk.fill("input[name=name]", "zhao")
    desk.select_option("select[name=role]", "staff")
    desk.check("input[name=alleys][value=lane]")
    desk.fill("input[name=password]", "zhao-first-pw")
    desk.click(".account-form button[type=submit]")
    assert "Account zhao created" in desk.inner_text(".flashes")

    mine = phone(browser, blocked)
    staff_login(mine, live, "zhao", "zhao-first-pw")
    mine.goto(f"{live}/staff/?lang=en")
    titles = mine.locator(".desk-row .title").all_inner_texts()
    assert titles == ["Lane"]
    assert mine.goto(f"{live}/staff/alleys/other").status == 404
    assert mine.locator("text=Accounts").count() == 0
    assert blocked == []


def test_control_page_follows_a_command_pending_sent_done(app, live, browser, admin,
                                                          alley_with_pile):
    """Without a reload, the control page shows a command going pending → sent → done."""
    from datetime import UTC, datetime

    from chargers import settings
    from chargers.extensions import db
    from chargers.models import Pile
    from chargers.services.devices import commands

    from .conftest import PASSWORD

    with app.app_context():
        set_ports("P-1", ["charging", "available", "available", "available"])
        user = db.session.get(type(admin[0]), admin[0].id)
        cmd_id = commands.issue(user, "P-1", 1, "stop").id
    blocked: list[str] = []
    page = phone(browser, blocked)
    staff_login(page, live, "root", PASSWORD)
    page.goto(f"{live}/staff/piles/P-1/control?lang=en")
    page.clock.install()
    outcome = page.locator(".cmds li .cmd-outcome").first

    def follows(step, words: str) -> None:
        with app.app_context():
            step()
            db.session.commit()
        for _ in range(20):
            page.clock.run_for(3_500)
            page.wait_for_timeout(150)
            if words in outcome.inner_text():
                return
        raise AssertionError(f"still {outcome.inner_text()!r}, expected {words!r}")

    assert "waiting to send" in outcome.inner_text()
    follows(lambda: commands.dispatch_pending(lambda topic, body: None, datetime.now(UTC),
                                              settings.commands(app.config)), "sent, waiting")
    follows(lambda: commands.on_ack(db.session.get(Pile, "P-1"), cmd_id, "accepted", None,
                                    datetime.now(UTC)), "done")
    assert blocked == []
