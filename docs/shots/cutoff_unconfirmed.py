"""Screenshots of an unconfirmed fire cut-off as residents (phone) and staff (desk)
see it: docs/shots/cutoff-resident.png and docs/shots/cutoff-desk.png.

    .venv/bin/python docs/shots/cutoff_unconfirmed.py

A throwaway SQLite alley with one pile charging on every port; smoke on port 3; the
pile never answers, and the cutoff-track job runs 31 s later. Headless Chromium
(/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.models import Contact, utcnow  # noqa: E402
from chargers.services import accounts, alerts, alleys, cutoff, piles  # noqa: E402

OUT = Path(__file__).resolve().parent
PASSWORD = "screenshot-pass-123"


def seed(app) -> None:
    with app.app_context():
        db.create_all()
        admin = accounts.create_user("admin", PASSWORD, "admin")
        alleys.create_alley(alleys.AlleyInput(slug="jiuru", name="九如巷"),
                            settings.alley_defaults(app.config), by=admin)
        pile = piles.register_pile(admin, piles.PileInput(id="JRX-005", alley="jiuru", ports=10,
                                                          label="5号桩"))[0]
        now = utcnow()
        for port in pile.ports:
            port.status, port.status_since = "charging", now - timedelta(minutes=40)
        pile.online, pile.online_since, pile.last_seen_at = True, now - timedelta(hours=3), now
        db.session.add(Contact(alley_id=pile.alley_id, name="王阿姨", level=1, channel="email",
                               target="wang@example.org", phone="13800000001"))
        rules = settings.alerts(app.config)
        alerts.on_fault(pile, 3, "smoke", True, 0.9, None, now - timedelta(seconds=40),
                        now - timedelta(seconds=40), rules=rules)
        db.session.commit()
        cutoff.track(now, rules)  # 40 s later, nothing acked: unconfirmed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite",
                          "SECRET_KEY": "shots", "WTF_CSRF_ENABLED": True}, config_name="testing")
        seed(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                     locale="zh-CN")
            phone.goto(f"{base}/a/jiuru")
            phone.screenshot(path=str(OUT / "cutoff-resident.png"), full_page=False)
            desk = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            desk.goto(f"{base}/login")
            desk.fill("input[name=name]", "admin")
            desk.fill("input[name=password]", PASSWORD)
            desk.click("button[type=submit]")
            desk.goto(f"{base}/staff/")
            desk.screenshot(path=str(OUT / "cutoff-desk.png"), full_page=True)
            browser.close()
        server.shutdown()
    print("wrote", OUT / "cutoff-resident.png", OUT / "cutoff-desk.png")


if __name__ == "__main__":
    main()
