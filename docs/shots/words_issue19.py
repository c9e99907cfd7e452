"""Screenshots of the pages issue 19 changed, in Chinese: docs/shots/words-*.png.

    .venv/bin/python docs/shots/words_issue19.py

A throwaway SQLite alley (one pile, a tiered tariff, a prepaid account, a few job
runs). Residents' page on a phone (390x844); staff pages on a desktop. Headless
Chromium (/usr/bin/chromium) through Playwright.
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
from chargers.jobs import Summary  # noqa: E402
from chargers.models import JobRun, JobRunLog, Tariff, utcnow  # noqa: E402
from chargers.services import accounts, alleys, piles, residents  # noqa: E402

OUT = Path(__file__).resolve().parent
PASSWORD = "screenshot-pass-123"


def seed(app) -> int:
    with app.app_context():
        db.create_all()
        admin = accounts.create_user("admin", PASSWORD, "admin")
        alleys.create_alley(alleys.AlleyInput(slug="jiuru", name="九如巷"),
                            settings.alley_defaults(app.config), by=admin)
        pile = piles.register_pile(admin, piles.PileInput(id="JRX-005", alley="jiuru", ports=10,
                                                          label="5号桩"))[0]
        now = utcnow()
        for port in pile.ports:
            port.status, port.status_since = ("charging" if port.number % 3 else "available",
                                              now - timedelta(minutes=port.number * 7))
        pile.online, pile.online_since, pile.last_seen_at = True, now - timedelta(hours=3), now
        t = db.session.query(Tariff).first()
        t.effective_from = now - timedelta(days=30)
        t.electricity_cents_per_kwh, t.service_scheme = 62, "tier_hour"
        t.service_tiers = [{"max_w": 180, "cents_per_hour": 20}, {"max_w": 360, "cents_per_hour": 30},
                           {"max_w": 1200, "cents_per_hour": 80}]
        t.free_minutes, t.minimum_cents, t.cap_cents = 5, 10, 500
        acc = residents.create_account(admin, residents.AccountInput(
            alley="jiuru", cards=["A1B2C3"], household="3-201", name="王阿姨"), now)
        for job_id, summary in (
                ("balance-guard", Summary("stop asked: 1 monthly_busy", "stop_asked",
                                          {"monthly_busy": 1})),
                ("settle", Summary("3 charged, 1 free", "settled", {"charged": 3, "free": 1})),
                ("commands-dispatch", Summary("2 command(s) sent", "commands_sent", {"n": 2}))):
            db.session.add(JobRun(job_id=job_id, started_at=now, finished_at=now, status="ok",
                                  summary=summary.stored()))
            db.session.add(JobRunLog(job_id=job_id, started_at=now, finished_at=now,
                                     duration_s=0.05, status="ok", summary=summary.stored()))
        db.session.commit()
        return acc.id


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite",
                          "SECRET_KEY": "shots", "WTF_CSRF_ENABLED": True}, config_name="testing")
        acc = seed(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        shots = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                     locale="zh-CN")
            phone.goto(f"{base}/a/jiuru?lang=zh")
            phone.screenshot(path=str(OUT / "words-resident-alley.png"), full_page=True)
            shots.append("words-resident-alley.png")
            desk = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            desk.goto(f"{base}/login?lang=zh")
            desk.fill("input[name=name]", "admin")
            desk.fill("input[name=password]", PASSWORD)
            desk.click("button[type=submit]")
            # A top-up typed as people type it, and a refused amount.
            desk.goto(f"{base}/staff/billing/accounts/{acc}?lang=zh")
            desk.fill("input[name='t-amount']", "¥50")
            desk.click("form[action$='/topup'] button[type=submit]")
            desk.fill("input[name='r-amount']", "10.005")
            desk.click("form[action$='/refund'] button[type=submit]")
            desk.screenshot(path=str(OUT / "words-staff-account.png"), full_page=True)
            shots.append("words-staff-account.png")
            desk.goto(f"{base}/staff/billing/jiuru/tariffs?lang=zh")
            desk.fill("input[name='electricity_per_kwh']", "0.62")
            desk.check("input[name='preview_only']")
            desk.click("form.form button[type=submit]")
            desk.screenshot(path=str(OUT / "words-staff-tariffs.png"), full_page=True)
            shots.append("words-staff-tariffs.png")
            desk.goto(f"{base}/staff/jobs?lang=zh")
            desk.screenshot(path=str(OUT / "words-staff-jobs.png"), full_page=True)
            shots.append("words-staff-jobs.png")
            desk.goto(f"{base}/staff/billing/jiuru?lang=zh")
            desk.screenshot(path=str(OUT / "words-staff-billing.png"), full_page=True)
            shots.append("words-staff-billing.png")
            desk.goto(f"{base}/staff/maintenance?lang=zh")
            link = desk.locator("a[href*='/edit']").first
            if link.count():
                link.click()
                desk.screenshot(path=str(OUT / "words-staff-plan-edit.png"), full_page=True)
                shots.append("words-staff-plan-edit.png")
            browser.close()
        server.shutdown()
    print("wrote", ", ".join(shots))


if __name__ == "__main__":
    main()
