"""Screenshots of the monthly close for the README: the public month page (公示) with
its server-drawn charts and the printable A4 notice, at phone size (390x844) and at A4
width, with headless Chromium, from a temp database seeded with the demo alleys and a
month of settled sessions, closed, reconciled and published.

    .venv/bin/python docs/statements_screenshot.py   # writes docs/accounts-*.png
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import screenshot  # noqa: E402  (docs/screenshot.py: serve, shoot)
from sqlalchemy import select  # noqa: E402

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.models import Alley, ChargingSession, Tariff, User  # noqa: E402
from chargers.services import demo, monthly_close, reconciliation, residents, settlement  # noqa: E402

DOCS = ROOT / "docs"
TZ = ZoneInfo("Asia/Shanghai")


def seed_month(now: datetime) -> str:
    """Jiuru: a tariff, 12 households, last month's sessions settled, the month closed,
    the grid bill entered and the month published. Returns the month."""
    rnd = random.Random(9)
    alley = db.session.scalar(select(Alley).where(Alley.slug == "jiuru"))
    loc = now.astimezone(TZ)
    first = datetime(loc.year, loc.month, 1, tzinfo=TZ)
    prev = (first - timedelta(days=1)).replace(day=1)
    t = db.session.scalar(select(Tariff).where(Tariff.alley_id == alley.id))
    t.effective_from = prev.astimezone(UTC) - timedelta(days=60)
    t.electricity_cents_per_kwh, t.service_scheme, t.service_cents = 62, "flat_hour", 20
    t.step_minutes = 30
    db.session.commit()
    admin = db.session.scalar(select(User).where(User.name == demo.DEMO_ADMIN[0]))
    cards = []
    for i in range(12):
        card = f"A88{i:05d}"
        acc = residents.create_account(admin, residents.AccountInput(
            alley="jiuru", cards=[card], kind="prepaid", household=f"{i // 4 + 1}幢{i % 4 + 1}01",
            phone=f"1380000{i:04d}"), prev.astimezone(UTC) - timedelta(days=2))
        residents.top_up(admin, acc.id, 5000, "wechat", f"No.{i:04d}",
                         prev.astimezone(UTC) - timedelta(days=1))
        cards.append(card)
    piles = [p.id for p in alley.piles]
    n = 0
    day = prev
    while day < first:
        weekend = day.weekday() >= 5
        for _k in range(rnd.randint(5, 9) + (3 if weekend else 0)):
            start = day.replace(hour=rnd.choice((18, 19, 20, 21, 22)), minute=rnd.randint(0, 59))
            minutes = rnd.randint(120, 420)
            n += 1
            db.session.add(ChargingSession(
                pile_id=rnd.choice(piles), port=rnd.randint(1, 4), session_ref=f"M{n}",
                card=rnd.choice(cards), status="stopped", started_at=start.astimezone(UTC),
                ended_at=(start + timedelta(minutes=minutes)).astimezone(UTC),
                start_meter_wh=0.0, energy_wh=float(minutes * rnd.randint(3, 6)),
                stop_reason="unplugged"))
        day += timedelta(days=1)
    db.session.commit()
    settlement.settle(first.astimezone(UTC) - timedelta(minutes=1))
    month = f"{prev.year:04d}-{prev.month:02d}"
    monthly_close.close_due(first.astimezone(UTC) + timedelta(hours=3))
    mc = db.session.scalar(select(monthly_close.MonthClose).where(
        monthly_close.MonthClose.alley_id == alley.id, monthly_close.MonthClose.month == month))
    grid_wh = mc.energy_wh * 1055 // 1000  # 5.2 % line loss
    reconciliation.set_grid_bill(admin, "jiuru", reconciliation.GridInput(
        month=month, grid_kwh=f"{grid_wh / 1000:.1f}", amount_cents=grid_wh * 56 // 1000),
        first.astimezone(UTC) + timedelta(days=3))
    monthly_close.publish(admin, "jiuru", month, first.astimezone(UTC) + timedelta(days=4))
    return month


def print_pages(url: str, pdf: Path) -> int:
    """Print `url` to PDF as a browser would (print styles, A4) and count its pages."""
    import re

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([screenshot.chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", f"--user-data-dir={profile}", "--lang=zh-CN",
                        "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url],
                       check=True, capture_output=True, timeout=60)
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shot.sqlite",
            "SECRET_KEY": "screenshot", "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False, "PUBLIC_BASE_URL": "https://charge.example.org"},
            config_name="testing")
        now = datetime.now(UTC)
        with app.app_context():
            db.create_all()
            demo.seed(Path(tmp) / "secrets.json", settings.alley_defaults(app.config))
            month = seed_month(now)
        base, server = screenshot.serve(app)
        try:
            url = f"{base}/a/jiuru/accounts/{month}"
            screenshot.shoot(url, DOCS / "accounts-month-phone.png")
            screenshot.shoot(url, DOCS / "accounts-month-phone-full.png", size=(390, 1900))
            screenshot.shoot(url + "/notice", DOCS / "accounts-notice-phone.png",
                             size=(390, 1700))
            screenshot.shoot(url + "/notice", DOCS / "accounts-notice-a4.png", size=(794, 1123))
            pdf = Path(tmp) / "notice.pdf"
            print("A4 print pages:", print_pages(url + "/notice?lang=zh", pdf))
            if shutil.which("pdftoppm"):  # poppler-utils: the printed page as a PNG
                subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf),
                                str(DOCS / "accounts-notice-print")], check=True)
                print("wrote", DOCS / "accounts-notice-print.png")
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
