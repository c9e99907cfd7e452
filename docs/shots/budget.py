"""Screenshots of the alley's power budget at phone size: a resident's pile page with
their place in the queue (docs/shots/budget-queue-resident.png) and the staff feeder
page (docs/shots/budget-feeder.png).

    .venv/bin/python docs/shots/budget.py

A throwaway SQLite alley with a 20 kW feeder limit and two piles that ask first
(v1.1 `authorize`). The cards, the sessions and their readings, and the queue go
through the real ingest (chargers.ingest.handlers.process); yesterday evening's load
curve is written as the `budget-check` job writes its samples (feeder.sample), from a
made-up evening. Headless Chromium (/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.ingest import handlers  # noqa: E402
from chargers.models import Alley, utcnow  # noqa: E402
from chargers.services import onboarding, users  # noqa: E402
from chargers.services.billing import accounts  # noqa: E402
from chargers.services.budget import feeder  # noqa: E402
from chargers.services.devices import alleys, piles  # noqa: E402
from tests.ingest_support import body, incoming, ts  # noqa: E402

OUT = Path(__file__).resolve().parent
PASSWORD = "screenshot-pass-123"
PHONE = {"width": 390, "height": 844}


def send(st, pile, kind, at, **fields):
    out = handlers.process([incoming(kind, body(kind, ts=ts(at), **fields), pile=pile,
                                     arrived_at=at)], st, now=at)
    assert out == ["accepted"], out


def seed(app) -> str:
    with app.app_context():
        db.create_all()
        admin = users.create_user("admin", PASSWORD, "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="jiuru", name="九如巷"),
                                settings.alley_defaults(app.config), by=admin)
        for n in (1, 2):
            piles.register_pile(admin, piles.PileInput(id=f"JRX-00{n}", alley="jiuru",
                                                       ports=10, label=f"{n}号桩"))
        now = utcnow().replace(microsecond=0)
        feeder.set_limit(admin, "jiuru", {"feeder_limit_w": 4000, "feeder_margin_w": 400},
                         now)
        st = settings.ingest(app.config)
        for n in range(1, 15):
            acc = accounts.create_account(admin, accounts.AccountInput(
                alley="jiuru", cards=[f"C-{n:05d}"], kind="prepaid", household=f"{n}号门"),
                now - timedelta(days=3))
            accounts.top_up(admin, acc.id, 5000, "cash", None, now - timedelta(days=3))
        for n in (1, 2):
            send(st, f"JRX-00{n}", "boot", now - timedelta(days=2), ports=10,
                 max_power_w=1000, features=["config", "authorize", "start"])
            for port in range(1, 11):
                send(st, f"JRX-00{n}", "status", now - timedelta(days=2), port=port,
                     status="available")
        # Yesterday's charges that ended full: the basis of the time-left estimates.
        for n in range(1, 13):
            start = now - timedelta(days=1, hours=3, minutes=7 * n)
            ref, card, port = f"Y{n}", f"C-{n:05d}", n % 10 + 1
            send(st, "JRX-001", "session", start, event="start", port=port, session=ref,
                 card=card, meter_wh=0)
            mins = 100 + 6 * n
            for m in range(10, mins, 10):
                send(st, "JRX-001", "meter", start + timedelta(minutes=m), port=port,
                     session=ref, power_w=380.0 if m < mins - 30 else 60.0,
                     energy_wh=min(6.0 * m, 6.0 * (mins - 30)))
            send(st, "JRX-001", "session", start + timedelta(minutes=mins), event="stop",
                 port=port, session=ref, energy_wh=6.0 * (mins - 30), reason="full")
            send(st, "JRX-001", "status", start + timedelta(minutes=mins), port=port,
                 status="available")
        # Eight charging (about 3.1 kW), then four more cards that wait, one refused.
        t = now - timedelta(minutes=50)
        k = 0
        for n in range(1, 9):
            pile, port = f"JRX-00{1 + (n - 1) // 5}", (n - 1) % 5 + 1
            card = f"C-{n:05d}"
            send(st, pile, "status", t, port=port, status="occupied")
            send(st, pile, "authorize", t, port=port, card=card)
            send(st, pile, "session", t + timedelta(seconds=3), event="start", port=port,
                 session=f"S{n}", card=card, meter_wh=0)
            send(st, pile, "status", t + timedelta(seconds=3), port=port, status="charging")
            for m in range(1, 6):
                k += 1
                at = now - timedelta(minutes=6 - m)
                send(st, pile, "meter", at, port=port, session=f"S{n}",
                     power_w=360.0 + 10 * n, energy_wh=30.0 * m + n)
            t += timedelta(seconds=40)
        for i, n in enumerate(range(9, 13)):
            at = now - timedelta(minutes=4 - i)
            send(st, "JRX-002", "status", at, port=6 + i, status="occupied")
            send(st, "JRX-002", "authorize", at, port=6 + i, card=f"C-{n:05d}")
        send(st, "JRX-002", "status", now - timedelta(seconds=40), port=10, status="occupied")
        send(st, "JRX-002", "authorize", now - timedelta(seconds=40), port=10, card="C-99999")
        send(st, "JRX-002", "status", now - timedelta(seconds=5), port=10, status="available")
        # Yesterday evening's load curve and queue, every ten minutes.
        alley = db.session.query(Alley).filter_by(slug="jiuru").one()
        tz = ZoneInfo(alley.timezone)
        day = (now.astimezone(tz) - timedelta(days=1)).replace(hour=0, minute=0, second=0)
        for i in range(144):
            h = i / 6
            evening = math.exp(-((h - 20.0) / 1.6) ** 2)
            load = 300 + 3350 * evening + 150 * math.sin(i)
            queue = max(0, round(7 * math.exp(-((h - 19.8) / 0.8) ** 2) - 1))
            feeder.sample(alley, day + timedelta(minutes=10 * i), max(0.0, load), queue, 4000)
        db.session.commit()
        return (day.strftime("%Y-%m-%d"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite",
                          "SECRET_KEY": "shots", "WTF_CSRF_ENABLED": True}, config_name="testing")
        day = seed(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            phone = browser.new_page(viewport=PHONE, locale="zh-CN", device_scale_factor=2)
            phone.goto(f"{base}/p/JRX-002?lang=zh")
            phone.screenshot(path=str(OUT / "budget-queue-resident.png"), full_page=True)
            phone.goto(f"{base}/login")
            phone.fill("input[name=name]", "admin")
            phone.fill("input[name=password]", PASSWORD)
            phone.click("button[type=submit]")
            phone.goto(f"{base}/staff/alleys/jiuru/feeder?lang=zh&day={day}")
            phone.screenshot(path=str(OUT / "budget-feeder.png"), full_page=True)
            browser.close()
        server.shutdown()
    print("wrote", OUT / "budget-queue-resident.png", OUT / "budget-feeder.png")


if __name__ == "__main__":
    main()
