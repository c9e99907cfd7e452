"""Screenshots of the session messages (issue 25 §3): a resident's 'My account' with
how they hear from us, in a WeChat-like phone viewport (docs/shots/messages-my-account.png);
the staff account page with the channels and the messages sent
(docs/shots/messages-staff-account.png); the WeChat emulator's page of the subscription
messages it received (docs/shots/messages-wechat.png).

    .venv/bin/python docs/shots/messages.py

A throwaway SQLite alley; a charge to full, a charge that failed and a stop for a fault go
through the real ingest (chargers.ingest.handlers.process); the outbox delivers to the
emulator (chargers/devtools/wechat_mp.py). Headless Chromium through Playwright.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chargers import create_app, settings  # noqa: E402
from chargers.devtools.wechat_mp import WechatMP  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.ingest import handlers  # noqa: E402
from chargers.models import ResidentChannels  # noqa: E402
from chargers.services import onboarding, users  # noqa: E402
from chargers.services.alerts import notify  # noqa: E402
from chargers.services.billing import accounts, reminders  # noqa: E402
from chargers.services.devices import alleys, piles  # noqa: E402
from tests.ingest_support import body, incoming  # noqa: E402

OUT = Path(__file__).resolve().parent
PASSWORD = "screenshot-pass-123"
SH = ZoneInfo("Asia/Shanghai")
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) "
             "NetType/WIFI Language/zh_CN")


def msg(kind, at, **fields):
    return incoming("session", body(kind, ts=at.astimezone(SH).isoformat(), **fields),
                    pile="JRX-001", arrived_at=at)


def seed(app) -> int:
    with app.app_context():
        db.create_all()
        admin = users.create_user("admin", PASSWORD, "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="jiuru", name="九如巷"),
                                settings.alley_defaults(app.config), by=admin)
        piles.register_pile(admin, piles.PileInput(id="JRX-001", alley="jiuru", ports=10,
                                                   label="1号桩"))
        day = datetime.now(SH).replace(hour=18, minute=5, second=0, microsecond=0)
        t0 = (day - timedelta(days=1)).astimezone(UTC)
        acc = accounts.create_account(admin, accounts.AccountInput(
            alley="jiuru", cards=["A0001234"], kind="prepaid", household="3幢201",
            name="王阿姨", phone="13800005678"), t0 - timedelta(days=3))
        accounts.top_up(admin, acc.id, 3000, "cash", None, t0 - timedelta(days=2))
        db.session.add(ResidentChannels(resident_id=acc.id, wechat_openid="oAbC-wang"))
        db.session.commit()  # the openid as the official account's OAuth leaves it
        reminders.set_channels(admin, acc.id, "", True, t0 - timedelta(days=1), wechat=True)
        st = settings.ingest(app.config)
        end = t0 + timedelta(hours=3, minutes=40)
        handlers.process([msg("session", t0, event="start", port=3, session="S1",
                              card="A0001234", meter_wh=0)], st, now=t0)
        handlers.process([msg("session", end, event="stop", port=3, session="S1",
                              energy_wh=812.0, reason="full")], st, now=end)
        t1 = t0 + timedelta(hours=4)
        handlers.process([msg("session", t1, event="start", port=4, session="S2",
                              card="A0001234", meter_wh=0)], st, now=t1)
        handlers.process([msg("session", t1 + timedelta(minutes=2), event="stop", port=4,
                              session="S2", energy_wh=3.0, reason="unplugged")], st,
                         now=t1 + timedelta(minutes=2))
        notify.deliver_due(t1 + timedelta(minutes=3), settings.delivery(app.config))
        return acc.id


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, WechatMP("wx-demo-app", "demo-secret") as mp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite",
                          "SECRET_KEY": "shots", "WTF_CSRF_ENABLED": True,
                          **mp.config(), "WEBHOOK_ALLOW_PRIVATE": True,
                          "WECHAT_MP_TEMPLATE_SESSION_START": "demo-start",
                          "WECHAT_MP_TEMPLATE_FULL": "demo-full",
                          "WECHAT_MP_TEMPLATE_FAILED": "demo-failed",
                          "WECHAT_MP_TEMPLATE_STOPPED": "demo-stopped"}, config_name="testing")
        acc = seed(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            phone = browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=2, is_mobile=True,
                                        user_agent=WECHAT_UA, locale="zh-CN").new_page()
            phone.goto(f"{base}/a/jiuru/account?lang=zh")
            phone.fill("input[name=card]", "A0001234")
            phone.fill("input[name=phone_last4]", "5678")
            phone.click("form.form button[type=submit]")
            phone.check("input[name=night]")
            phone.click("#channels ~ form button[type=submit]")
            phone.screenshot(path=str(OUT / "messages-my-account.png"), full_page=True)
            phone.goto(mp.base_url + "/")
            phone.screenshot(path=str(OUT / "messages-wechat.png"), full_page=True)
            desk = browser.new_page(viewport={"width": 900, "height": 900}, locale="zh-CN")
            desk.goto(f"{base}/login")
            desk.fill("input[name=name]", "admin")
            desk.fill("input[name=password]", PASSWORD)
            desk.click("button[type=submit]")
            desk.goto(f"{base}/staff/billing/accounts/{acc}?lang=zh")
            desk.screenshot(path=str(OUT / "messages-staff-account.png"), full_page=True)
            browser.close()
        server.shutdown()
    print("wrote", *(OUT / f"messages-{n}.png" for n in ("my-account", "wechat",
                                                          "staff-account")))


if __name__ == "__main__":
    main()
