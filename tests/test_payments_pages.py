"""Staff pages of online payments: a refund to the original channel asked from the
orders page, a staff member of another alley kept out, and a reconciliation finding
resolved with a note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers.constants import MismatchStatus, RefundState
from chargers.devtools.payemu import Trade
from chargers.extensions import db
from chargers.models import PaymentMismatch, PaymentOrder, PaymentRefund

from .payments_support import DESKTOP_UA, balance, start_topup, with_emulator
from .webtools import csrf_from, login


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _paid_order(app, client, emu, resident, fen=3000) -> str:
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=fen)
    with app.app_context():
        no = db.session.scalars(select(PaymentOrder.order_no).order_by(PaymentOrder.id.desc())).first()
    assert emu.pay(no) == 204
    return no


def test_refund_from_the_orders_page(app, client, emu, deliver_to, resident, admin, make_staff):
    no = _paid_order(app, client, emu, resident)
    client.post("/logout")
    assert login(client, "root").status_code == 302
    page = client.get("/staff/payments").get_data(as_text=True)
    assert no in page and f"/staff/payments/{no}/refund" in page
    form = client.get(f"/staff/payments/{no}/refund")
    r = client.post(f"/staff/payments/{no}/refund",
                    data={"csrf_token": csrf_from(form.get_data(as_text=True)), "amount": "10",
                          "reason": "搬走了"})
    assert r.status_code == 302
    assert balance(app, resident) == 2000
    with app.app_context():
        ref = db.session.scalar(select(PaymentRefund))
        assert (ref.amount_cents, ref.state) == (1000, RefundState.PROCESSING)
    # A staff member of another alley sees neither the order nor its refund form.
    make_staff("other", [])
    other = app.test_client()
    assert login(other, "other").status_code == 302
    assert no not in other.get("/staff/payments").get_data(as_text=True)
    assert other.get(f"/staff/payments/{no}/refund").status_code == 404


def test_resolve_a_finding(app, client, emu, deliver_to, resident, admin):
    _paid_order(app, client, emu, resident)
    emu.extra_lines.append(Trade("wechat", "T20990101000000ffffffffffffffff", 3000, "",
                                 kind="NATIVE", state="SUCCESS", txn="4200x", mchid=emu.mchid,
                                 appid=emu.appid, paid_at=datetime.now(UTC)))
    from chargers.jobs import all_jobs, run_job

    run_job(app, all_jobs()["payments-reconcile"], now=datetime.now(UTC) + timedelta(days=1))
    assert login(client, "root").status_code == 302
    page = client.get("/staff/payments/reconcile").get_data(as_text=True)
    assert "T20990101000000ffffffffffffffff" in page and "4200x" in page
    with app.app_context():
        mid = db.session.scalar(select(PaymentMismatch.id))
    r = client.post(f"/staff/payments/reconcile/{mid}/resolve",
                    data={"csrf_token": csrf_from(page), "note": "另一个商户号的款，已转出"})
    assert r.status_code == 302
    with app.app_context():
        m = db.session.get(PaymentMismatch, mid)
        assert m.status == MismatchStatus.RESOLVED and m.note == "另一个商户号的款，已转出"


def test_money_words_are_yuan_and_online_money_is_not_reversed(app, client, emu, deliver_to,
                                                               resident, admin):
    """Staff read yuan: a refund over what is left is refused naming yuan amounts, never
    fen; an online top-up offers no 'Reverse' and the service refuses one (the provider
    holds the money: refund to the channel); the order page lists its refunds."""
    from chargers.models import Posting, User
    from chargers.services.billing import accounts
    from chargers.services.errors import Invalid

    no = _paid_order(app, client, emu, resident)
    client.post("/logout")
    assert login(client, "root").status_code == 302
    form = client.get(f"/staff/payments/{no}/refund?lang=zh")
    r = client.post(f"/staff/payments/{no}/refund?lang=zh", follow_redirects=True,
                    data={"csrf_token": csrf_from(form.get_data(as_text=True)), "amount": "40",
                          "reason": "多退"})
    text = r.get_data(as_text=True)
    assert "退款金额须在 ¥0.01 至订单剩余金额（¥30.00）和余额（¥30.00）之间" in text
    assert " 分）" not in text and "分）" not in text
    assert balance(app, resident) == 3000
    page = client.get(f"/staff/billing/accounts/{resident}?lang=zh").get_data(as_text=True)
    assert no in page and "/reverse" not in page
    with app.app_context():
        posting = db.session.scalar(select(Posting).where(Posting.kind == "topup"))
        with pytest.raises(Invalid) as err:
            accounts.reverse(db.session.get(User, admin[0].id), posting.id, "错了",
                             datetime.now(UTC))
        assert err.value.code == "money.online_not_reversible"
    assert balance(app, resident) == 3000
    form = client.get(f"/staff/payments/{no}/refund")
    client.post(f"/staff/payments/{no}/refund", data={
        "csrf_token": csrf_from(form.get_data(as_text=True)), "amount": "10", "reason": "x"})
    order = client.get(f"/pay/o/{no}?lang=zh").get_data(as_text=True)
    assert "原路退回微信支付" in order and "¥10.00" in order


def test_write_off_is_typed_in_yuan(app, client, admin, alley_with_pile):
    """The write-off form takes yuan; an unreadable amount is refused, never taken as
    'the whole debt'."""
    from chargers.models import User
    from chargers.services.billing import accounts, ledger

    from .test_settlement import make_account

    acc = make_account(client, admin[1], ["C-1"])
    with app.app_context():
        root = db.session.get(User, admin[0].id)
        a = accounts.get_account(root, acc)
        ledger.post("test-debt", "charge", a.alley_id,
                    [(ledger.resident_account(a), -500), (ledger.account(a.alley_id, "service"), 500)],
                    now=datetime.now(UTC) - timedelta(hours=1))
        db.session.commit()
    url = f"/staff/billing/accounts/{acc}"
    assert login(client, "root").status_code == 302
    page = client.get(url + "?lang=zh").get_data(as_text=True)
    assert "金额（元）" in page and 'value="5.00"' in page and "金额（分）" not in page

    def write_off(amount):
        token = csrf_from(client.get(url).get_data(as_text=True))
        return client.post(url + "/writeoff", data={"csrf_token": token, "amount": amount,
                                                   "note": "困难户"})

    write_off("abc")
    write_off("")
    with app.app_context():
        assert ledger.debt(db.session.get(type(a), acc)) == 500  # nothing written off
    write_off("2.5")
    with app.app_context():
        assert ledger.debt(db.session.get(type(a), acc)) == 250
