"""Screenshots of billing for the README: the alley page's posted prices and a receipt,
at phone size (390 px) with headless Chromium, from a temp database seeded with the
demo alleys, a tiered tariff and one settled session.

    .venv/bin/python docs/billing_screenshot.py        # writes docs/*-prices-phone.png,
                                                       # docs/receipt-phone.png
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import screenshot  # noqa: E402  (docs/screenshot.py: serve, shoot, seed_states)
from sqlalchemy import select  # noqa: E402

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.models import Alley, ChargingSession, MeterSample, Tariff, User  # noqa: E402
from chargers.services import demo, residents, settlement  # noqa: E402

DOCS = ROOT / "docs"
TIERS = [{"max_w": 180, "cents_per_hour": 20}, {"max_w": 360, "cents_per_hour": 30},
         {"max_w": 540, "cents_per_hour": 40}, {"max_w": 800, "cents_per_hour": 60},
         {"max_w": 1200, "cents_per_hour": 80}]


def seed_billing(now: datetime) -> str:
    """Jiuru's posted tariff, one resident and one settled session; its receipt token."""
    alley = db.session.scalar(select(Alley).where(Alley.slug == "jiuru"))
    t = db.session.scalar(select(Tariff).where(Tariff.alley_id == alley.id))
    t.effective_from = now - timedelta(days=30)
    t.electricity_cents_per_kwh, t.service_scheme, t.service_tiers = 62, "tier_hour", TIERS
    t.step_minutes, t.free_minutes, t.minimum_cents = 30, 5, 20
    t.cap_cents, t.full_float_minutes = 500, 60
    db.session.commit()
    admin = db.session.scalar(select(User).where(User.name == demo.DEMO_ADMIN[0]))
    acc = residents.create_account(admin, residents.AccountInput(
        alley="jiuru", cards=["A8801234"], kind="prepaid", household="3幢201",
        name="张阿姨", phone="13800005678"), now)
    residents.top_up(admin, acc.id, 5000, "wechat", "No.0012", now - timedelta(days=3))
    pile = alley.piles[3]
    start = now - timedelta(hours=7, minutes=20)
    s = ChargingSession(pile_id=pile.id, port=4, session_ref="S-88", card="A8801234",
                        status="stopped", started_at=start, ended_at=start + timedelta(
                            hours=6, minutes=42), start_meter_wh=120345.0, energy_wh=1402.0,
                        stop_reason="unplugged")
    db.session.add(s)
    db.session.flush()
    for m in range(0, 6 * 60 + 42, 2):
        full = m >= 300
        db.session.add(MeterSample(pile_id=pile.id, port=4, session_id=s.id,
                                   ts=start + timedelta(minutes=m),
                                   power_w=4.0 if full else 330.0,
                                   energy_wh=min(1402.0, m * 5.5 if not full else 1402.0)))
    db.session.commit()
    settlement.settle(now)
    return db.session.get(ChargingSession, s.id).receipt_token


def bottom_of_page(tall: Path, out: Path) -> None:
    """The last phone screen of a tall screenshot (where the posted prices are):
    headless Chromium draws nothing when asked to scroll to an anchor."""
    from PIL import Image

    img = Image.open(tall).convert("RGB")
    w, h = img.size
    bg = img.getpixel((w - 1, h - 1))
    bottom = h - 1
    while bottom > 0 and all(img.getpixel((x, bottom)) == bg for x in range(0, w, 3)):
        bottom -= 1
    bottom = min(h, bottom + 24)
    top = max(0, bottom - screenshot.SIZE[1])
    img.crop((0, top, w, bottom)).save(out)
    print("wrote", out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shot.sqlite",
            "SECRET_KEY": "screenshot", "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False}, config_name="testing")
        now = datetime.now(UTC)
        with app.app_context():
            db.create_all()
            demo.seed(Path(tmp) / "secrets.json", settings.alley_defaults(app.config))
            screenshot.seed_states(now)
            token = seed_billing(now)
            pile = db.session.scalar(select(Alley).where(Alley.slug == "jiuru")).piles[3].id
        base, server = screenshot.serve(app)
        try:
            for url, name in ((f"{base}/a/jiuru", "alley-prices-phone.png"),
                              (f"{base}/p/{pile}", "pile-prices-phone.png")):
                tall = Path(tmp) / name
                screenshot.shoot(url, tall, size=(screenshot.SIZE[0], 3200))
                bottom_of_page(tall, DOCS / name)
            screenshot.shoot(f"{base}/r/{token}", DOCS / "receipt-phone.png")
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
