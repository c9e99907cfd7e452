"""Online top-ups end to end through the provider emulator and the real SDKs: each
channel (WeChat JSAPI after OAuth, H5, Native; Alipay wap) from the 充值 page to the
signed notification and the ledger; a duplicated notification posts once; a forged,
expired or other-merchant one posts nothing (and is counted); the page polls our order."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from chargers.constants import OrderState
from chargers.devtools.payemu import _key
from chargers.extensions import db
from chargers.models import LedgerAccount, PaymentNotice, PaymentOrder, Posting, ResidentChannels
from chargers.services.billing import ledger

from .payments_support import (
    DESKTOP_UA,
    PHONE_UA,
    WECHAT_UA,
    balance,
    pay_page,
    start_topup,
    topup_link,
    with_emulator,
)


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _order(app, order_no=None) -> PaymentOrder:
    with app.app_context():
        stmt = select(PaymentOrder).order_by(PaymentOrder.id.desc())
        if order_no:
            stmt = stmt.where(PaymentOrder.order_no == order_no)
        o = db.session.scalars(stmt).first()
        db.session.expunge(o)
        return o


def _state(client, order_no):
    return client.get(f"/pay/o/{order_no}/state").json["state"]


def _notices(app) -> dict:
    with app.app_context():
        return dict(db.session.execute(select(PaymentNotice.outcome, func.count())
                                       .group_by(PaymentNotice.outcome)).all())


def test_wechat_native_topup_end_to_end(app, client, emu, deliver_to, resident, caplog):
    caplog.set_level("DEBUG")
    r = start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=2000)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<svg" in html  # the QR code of the code_url
    o = _order(app)
    assert (o.channel, o.amount_cents, o.state) == ("wechat_native", 2000, OrderState.CREATED)
    assert _state(client, o.order_no) == "pending"
    assert balance(app, resident) == 0
    assert emu.pay(o.order_no) == 204  # the signed, encrypted notification, acknowledged
    assert _state(client, o.order_no) == "paid"
    assert balance(app, resident) == 2000
    with app.app_context():
        held = db.session.scalar(select(LedgerAccount).where(LedgerAccount.kind == "pay_wechat"))
        assert held.balance_cents == -2000  # the alley's money at WeChat Pay
        assert ledger.verify() == []
    assert "paid (notify): 2000 fen posted" in caplog.text
    assert emu.apiv3_key not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_wechat_h5_topup_typed_amount(app, client, emu, deliver_to, resident):
    r = start_topup(app, client, resident, PHONE_UA, "wechat_h5", amount="12.5")
    target = pay_page(r)
    assert target.startswith(emu.base_url + "/emu/wechat/pay/") and "redirect_url=" in target
    o = _order(app)
    assert o.amount_cents == 1250
    # The resident's browser opens WeChat's page and pays.
    assert requests.get(target, timeout=10).status_code == 200
    assert emu.pay(o.order_no) == 204
    assert balance(app, resident) == 1250


def test_alipay_wap_topup_end_to_end(app, client, emu, deliver_to, resident):
    r = start_topup(app, client, resident, PHONE_UA, "alipay_wap", preset=5000)
    url = pay_page(r)
    assert url.startswith(emu.base_url + "/gateway.do?")
    page = requests.get(url, timeout=10)  # the signed wap pay request, verified there
    assert page.status_code == 200 and "支付宝" in page.text
    o = _order(app)
    q = parse_qs(urlsplit(url).query)
    assert q["method"] == ["alipay.trade.wap.pay"]
    assert o.order_no in q["return_url"][0]
    assert _state(client, o.order_no) == "pending"
    # Coming back from Alipay proves nothing: the order page still says pending.
    assert client.get(f"/pay/o/{o.order_no}").status_code == 200
    assert _state(client, o.order_no) == "pending"
    assert emu.pay(o.order_no) == 200
    assert emu.delivered[-1] == (o.order_no, 200)
    assert _state(client, o.order_no) == "paid"
    assert balance(app, resident) == 5000


def test_wechat_jsapi_after_oauth(app, client, emu, deliver_to, resident):
    link = topup_link(app, resident)
    r = client.get(link, headers={"User-Agent": WECHAT_UA})
    assert r.status_code == 302  # to WeChat's OAuth first (snsapi_base)
    auth = r.headers["Location"]
    assert auth.startswith(emu.mp.base_url + "/connect/oauth2/authorize?")
    assert "scope=snsapi_base" in auth
    back = requests.get(auth.split("#")[0], allow_redirects=False, timeout=10).headers["Location"]
    r = client.get(back.replace("http://localhost", ""), headers={"User-Agent": WECHAT_UA})
    assert r.status_code == 302 and r.headers["Location"].endswith(link)
    with app.app_context():
        openid = db.session.get(ResidentChannels, resident).wechat_openid
        assert openid.startswith("o")
    r = start_topup(app, client, resident, WECHAT_UA, "wechat_jsapi", preset=1000)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    params = re.search(r'id="wx-params">(.*?)</script>', html).group(1)
    assert "prepay_id=wx" in params and "paySign" in params
    o = _order(app)
    assert emu.trades[o.order_no].openid == openid
    assert emu.pay(o.order_no) == 204
    assert balance(app, resident) == 1000


def test_amount_outside_the_limits_is_refused(app, client, emu, resident):
    r = start_topup(app, client, resident, DESKTOP_UA, "wechat_native", amount="0.5")
    assert r.status_code == 422
    r = start_topup(app, client, resident, DESKTOP_UA, "wechat_native", amount="500.01")
    assert r.status_code == 422
    r = start_topup(app, client, resident, DESKTOP_UA, "alipay_wap", preset=1000)
    assert r.status_code == 422  # Alipay is not offered on a desktop
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)) == 0


def test_duplicated_notification_posts_once(app, client, emu, deliver_to, resident):
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=1000)
    o = _order(app)
    assert emu.pay(o.order_no) == 204
    assert emu.notify(o.order_no) == 204  # WeChat retries: acknowledged, nothing posted
    assert emu.notify(o.order_no) == 204
    assert balance(app, resident) == 1000
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Posting)
                              .where(Posting.key == f"paytopup:{o.order_no}"))
        assert n == 1
    assert _notices(app) == {"posted": 1, "replayed": 2}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'chargers_payment_notifications_total{outcome="replayed",provider="wechat"} 2.0' in metrics


def test_alipay_duplicated_notification_posts_once(app, client, emu, deliver_to, resident):
    r = start_topup(app, client, resident, PHONE_UA, "alipay_wap", preset=2000)
    requests.get(pay_page(r), timeout=10)
    o = _order(app)
    assert emu.pay(o.order_no) == 200
    emu.notify(o.order_no)
    assert balance(app, resident) == 2000
    assert _notices(app) == {"posted": 1, "replayed": 1}


def test_forged_expired_other_merchant_notifications_post_nothing(app, client, emu, resident):
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=1000)
    o = _order(app)
    emu.pay(o.order_no, notify=False)  # paid there; only forgeries reach us
    old = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp())
    forgeries = {
        "bad_signature": emu.wechat_notice(o.order_no, sign_key=_key()),
        "expired": emu.wechat_notice(o.order_no, timestamp=old),
        "other_merchant": emu.wechat_notice(o.order_no, mchid="1900000999"),
    }
    # Encrypted under another API v3 key: the SDK cannot decrypt it.
    forgeries["undecryptable"] = emu.wechat_notice(o.order_no, apiv3_key="0" * 32)
    for name, (headers, body) in forgeries.items():
        r = client.post("/pay/notify/wechat", data=body, headers=headers)
        assert r.status_code == 400, name
    # A tampered body under a genuine signature.
    headers, body = emu.wechat_notice(o.order_no)
    r = client.post("/pay/notify/wechat", data=body.replace(b"TRANSACTION", b"TRANSACTIOn"),
                    headers=headers)
    assert r.status_code == 400
    assert balance(app, resident) == 0
    assert _state(client, o.order_no) == "pending"
    assert _notices(app) == {"bad_signature": 3, "expired": 1, "other_merchant": 1}
    # Alipay: a signature by another key, an old notify_time, another app id.
    r = start_topup(app, client, resident, PHONE_UA, "alipay_wap", preset=3000)
    requests.get(pay_page(r), timeout=10)  # the resident opens Alipay's page
    a = _order(app)
    emu.pay(a.order_no, notify=False)
    for form in (emu.alipay_notice(a.order_no, sign_key=_key()),
                 emu.alipay_notice(a.order_no, notify_time=datetime.now(UTC) - timedelta(hours=2)),
                 emu.alipay_notice(a.order_no, app_id="2021009999999999")):
        r = client.post("/pay/notify/alipay", data=urlencode(form),
                        content_type="application/x-www-form-urlencoded")
        assert r.get_data(as_text=True) == "fail"
    assert balance(app, resident) == 0
    counts = _notices(app)
    assert counts["bad_signature"] == 4 and counts["expired"] == 2
    assert counts["other_merchant"] == 2
    assert _state(client, a.order_no) == "pending"
