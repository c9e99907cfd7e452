"""Screenshots of online top-up (充值) in a WeChat-like phone viewport and of the staff
reconciliation page: docs/shots/pay-topup-wechat.png, pay-order-wechat.png,
pay-paid-wechat.png, pay-reconcile-phone.png and pay-reconcile-desk.png.

    .venv/bin/python docs/shots/payments.py

Everything real but the providers: the app and the payment emulator
(chargers.devtools.payemu) each serve on a local port, the alley is the crawler's
(tests/every_state.py, with its online payments and reconciliation findings), the
phone carries WeChat's user agent, so the top-up page goes through the official
account's OAuth first and pays by JSAPI; the emulator's notification reaches the app
over HTTP and the order page, polling, turns to paid. Headless Chromium
(/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chargers import create_app  # noqa: E402
from chargers.devtools.payemu import PayEmulator  # noqa: E402
from chargers.devtools.wechat_mp import WechatMP  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.models import PaymentOrder  # noqa: E402
from tests import every_state  # noqa: E402
from tests.conftest import PASSWORD  # noqa: E402

OUT = Path(__file__).resolve().parent
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) "
             "NetType/WIFI Language/zh_CN")


def main() -> None:
    emu = PayEmulator(appid="wx-demo-app")
    emu_server = emu.serve()
    with tempfile.TemporaryDirectory() as tmp, WechatMP(emu.appid, "demo-secret") as mp:
        # The app's port first: the emulator posts its notifications there.
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        base = f"http://127.0.0.1:{port}"
        config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shots.sqlite",
                  "SECRET_KEY": "shots", "WTF_CSRF_ENABLED": True, "MQTT_URL": "",
                  "RATELIMIT_STORAGE_URI": "memory://", "PUBLIC_BASE_URL": base,
                  "SERVER_NAME": None}
        config.update(emu.config(Path(tmp) / "keys", base))
        config.update(mp.config())  # the official account: OAuth (JSAPI's openid)
        app = create_app(config, config_name="testing")
        with app.app_context():
            db.create_all()
            seeded = every_state.seed(emu=emu)
        emu.deliver = emu._http_deliver  # from now on, over HTTP to the app
        emu.refund_outcome = "SUCCESS"
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        topup = seeded.pay_pages[0]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            phone = browser.new_page(viewport={"width": 390, "height": 844},
                                     device_scale_factor=2, locale="zh-CN", user_agent=WECHAT_UA)
            phone.goto(f"{base}{topup}")  # → WeChat OAuth (emulated) → back with the openid
            phone.wait_for_selector("form.topup")
            phone.check("input[name=preset][value='2000']")
            phone.screenshot(path=str(OUT / "pay-topup-wechat.png"), full_page=True)
            phone.click("button[name=channel][value=wechat_jsapi]")
            phone.wait_for_selector("#wx-pay")
            phone.screenshot(path=str(OUT / "pay-order-wechat.png"), full_page=True)
            with app.app_context():
                no = db.session.query(PaymentOrder.order_no).order_by(
                    PaymentOrder.id.desc()).first()[0]
            # WeChat's payment sheet (in the real app) → the signed notification.
            status = emu.pay(no)
            assert status == 204, status
            phone.wait_for_selector(".pay-paid:not([hidden])", timeout=15_000)
            time.sleep(0.3)
            phone.screenshot(path=str(OUT / "pay-paid-wechat.png"), full_page=True)
            for name, size in (("pay-reconcile-phone.png", (390, 844)),
                               ("pay-reconcile-desk.png", (1280, 900))):
                page = browser.new_page(viewport={"width": size[0], "height": size[1]},
                                        device_scale_factor=2 if size[0] < 500 else 1,
                                        locale="zh-CN")
                page.goto(f"{base}/login")
                page.fill("input[name=name]", seeded.admin)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{base}/staff/payments/reconcile")
                page.locator("details").first.evaluate("d => d.open = true")
                page.screenshot(path=str(OUT / name), full_page=True)
            browser.close()
        server.shutdown()
    emu_server.shutdown()
    print("wrote", *(OUT / n for n in ("pay-topup-wechat.png", "pay-order-wechat.png",
                                       "pay-paid-wechat.png", "pay-reconcile-phone.png",
                                       "pay-reconcile-desk.png")))


if __name__ == "__main__":
    main()
