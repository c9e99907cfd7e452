"""Fixtures and helpers for the payments tests (a pytest plugin of tests/conftest.py):
the provider emulator (chargers.devtools.payemu) served on a real local port, the
product configured for it, notifications delivered
into the test client, and a resident account with its top-up link."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from chargers.devtools.payemu import PayEmulator
from chargers.devtools.wechat_mp import WechatMP
from chargers.extensions import db
from chargers.models import Alley, ResidentAccount
from chargers.services.billing import accounts, ledger

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) NetType/WIFI")
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36")
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


@pytest.fixture
def emu():
    """The payment emulator, with the official account it is bound to as `emu.mp`
    (chargers.devtools.wechat_mp: the OAuth)."""
    e = PayEmulator(appid="wx-pay-test")
    server = e.serve()
    with WechatMP(e.appid, "pay-test-secret") as mp:
        e.mp = mp
        yield e
    server.shutdown()


def with_emulator(app_config: dict, emu: PayEmulator, tmp_path) -> dict:
    """The app's settings for the emulator and its official account (a payments test
    module's `app_config`)."""
    app_config.update(emu.config(tmp_path / "paykeys", "http://localhost"))
    app_config.update(emu.mp.config())
    return app_config


@pytest.fixture
def deliver_to(client, emu):
    """Notifications from the emulator go into the test client (the notify URL's path)."""
    def deliver(url, headers, body):
        return client.post(urlsplit(url).path, data=body, headers=headers).status_code

    emu.deliver = deliver
    return client


@pytest.fixture
def resident(app, client, alley_with_pile):
    """A prepaid account of alley `lane` (card C-1, phone …1234): its id."""
    from chargers.services.billing.accounts import AccountInput

    with app.app_context():
        acc = accounts.create_account(None, AccountInput(alley="lane", cards=["C-1"],
                                                         phone="13800001234"),
                                      datetime.now(UTC))
        return acc.id


def topup_link(app, account_id: int) -> str:
    from chargers.web import pay

    with app.test_request_context():
        return pay.topup_link(db.session.get(ResidentAccount, account_id))


def start_topup(app, client, account_id: int, ua: str, channel: str, *, preset=None,
                amount=None):
    """Open 充值 in a browser with this user agent and pay `preset` (fen) or `amount`
    (typed yuan) by `channel`: the response to the form's POST."""
    link = topup_link(app, account_id)
    page = client.get(link, headers={"User-Agent": ua})
    assert page.status_code == 200, page.status_code
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "channel": channel}
    if preset is not None:
        data["preset"] = str(preset)
    if amount is not None:
        data["amount"] = amount
    return client.post(link, data=data, headers={"User-Agent": ua})


GO = re.compile(r'data-go="([^"]+)"')


def pay_page(response) -> str:
    """The provider's page our order page sends the browser to (Alipay, WeChat H5)."""
    import html

    assert response.status_code == 200, response.status_code
    return html.unescape(GO.search(response.get_data(as_text=True)).group(1))


def balance(app, account_id: int) -> int:
    with app.app_context():
        return ledger.balance(db.session.get(ResidentAccount, account_id))


def alley_id(app, slug: str = "lane") -> int:
    with app.app_context():
        return db.session.query(Alley).filter_by(slug=slug).one().id


def pay_through(app, client, emu, account_id: int, channel: str, fen: int,
                ua: str | None = None) -> str:
    """Top up `fen` by `channel` as a resident would (desktop for Native, a phone
    otherwise, or `ua`), open the provider's page for Alipay, and pay at the emulator
    (which sends its notification): our order number."""
    import requests
    from sqlalchemy import select

    from chargers.models import PaymentOrder

    ua = ua or (DESKTOP_UA if channel == "wechat_native" else PHONE_UA)
    r = start_topup(app, client, account_id, ua, channel, preset=fen)
    if channel == "alipay_wap":
        requests.get(pay_page(r), timeout=10)
    with app.app_context():
        no = db.session.scalars(select(PaymentOrder.order_no)
                                .order_by(PaymentOrder.id.desc())).first()
    emu.pay(no)
    return no
