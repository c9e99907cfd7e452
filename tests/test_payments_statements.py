"""Residents' monthly statements show online top-ups and refunds apart from cash, by
channel (WeChat Pay, Alipay), as the month close and the 公示 do: on the resident's
'My account', the staff statement page, the statements CSV and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.models import Alley, ResidentAccount, Statement, User, utcnow
from chargers.services.billing import accounts, ledger, monthly_close
from chargers.services.payments import refunds

from .payments_support import pay_through, with_emulator
from .webtools import csrf_from, login


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _pay(app, client, emu, resident, channel, fen) -> str:
    return pay_through(app, client, emu, resident, channel, fen)


def test_statement_shows_online_money_apart_from_cash(app, client, emu, deliver_to, resident,
                                                      admin):
    wx = _pay(app, client, emu, resident, "wechat_native", 5000)
    _pay(app, client, emu, resident, "alipay_wap", 2000)
    now = utcnow()
    rules = settings.payments(app.config)
    with app.app_context():
        root = db.session.get(User, admin[0].id)
        accounts.top_up(root, resident, 1000, "cash", "R-1", now)
        accounts.refund(root, resident, 300, "cash", None, now, reason="change")
        refunds.ask(None, wx, 1500, "moving", rules, now)  # back to WeChat Pay
        refunds.track(rules, now)
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        month = monthly_close.local_month(now, monthly_close.ZoneInfo(alley.timezone))
        _start, end = monthly_close.bounds(month, monthly_close.ZoneInfo(alley.timezone))
        mc = monthly_close.close_month(alley, month, end + timedelta(hours=2))
        assert mc is not None and ledger.verify() == []
        assert (mc.topups_cents, mc.online_cents) == (8000, 7000 - 1500)
        st = db.session.scalar(select(Statement).where(Statement.resident_id == resident))
        assert (st.topups_cents, st.topups_wechat_cents, st.topups_alipay_cents,
                st.topups_cash_cents) == (8000, 5000, 2000, 1000)
        assert (st.refunds_cents, st.refunds_wechat_cents, st.refunds_alipay_cents,
                st.refunds_cash_cents) == (-1800, -1500, 0, -300)
        st_id = st.id
        acc = db.session.get(ResidentAccount, resident)
        assert acc is not None
    # The resident's 'My account' (card + last 4 digits of the phone).
    page = client.get("/a/lane/account").get_data(as_text=True)
    html = client.post("/a/lane/account", data={"csrf_token": csrf_from(page), "card": "C-1",
                                                "phone_last4": "1234"}).get_data(as_text=True)
    assert "现金 ¥10.00" in html and "微信支付 ¥50.00" in html and "支付宝 ¥20.00" in html
    assert "退回微信支付 ¥15.00" in html
    # Staff: the statement page and the CSV; the API.
    assert login(client, "root").status_code == 302
    html = client.get(f"/staff/statements/{st_id}").get_data(as_text=True)
    for text in ("¥50.00", "¥20.00", "¥10.00", "-¥15.00", "-¥3.00"):
        assert text in html, text
    csv = client.get(f"/staff/months/lane/{month}/statements.csv").get_data(as_text=True)
    assert csv.splitlines()[0].endswith("退款退回支付宝（元）")
    assert csv.splitlines()[1].endswith(",50.00,20.00,-15.00,0.00")
