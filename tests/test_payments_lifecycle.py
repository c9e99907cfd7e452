"""An order never confirmed is queried after 5 minutes, then closed (at the provider and
here), or posted when the provider says it was paid after all; a refund goes back to
the original channel and is tracked until the provider confirms (or reversed when it
fails). Through the emulator and the real SDKs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from chargers import settings
from chargers.constants import OrderState, RefundState
from chargers.extensions import db
from chargers.jobs import all_jobs, run_job
from chargers.models import PaymentOrder, PaymentRefund, utcnow
from chargers.services.billing import ledger
from chargers.services.errors import Invalid
from chargers.services.payments import refunds

from .payments_support import DESKTOP_UA, PHONE_UA, balance, pay_page, start_topup, with_emulator


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _last_order(app) -> str:
    with app.app_context():
        return db.session.scalars(select(PaymentOrder.order_no)
                                  .order_by(PaymentOrder.id.desc())).first()


def _order(app, order_no):
    with app.app_context():
        o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.order_no == order_no))
        db.session.expunge(o)
        return o


def test_an_order_never_confirmed_is_closed(app, client, emu, deliver_to, resident):
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=1000)
    wx = _last_order(app)
    r = start_topup(app, client, resident, PHONE_UA, "alipay_wap", preset=2000)
    requests.get(pay_page(r), timeout=10)  # opened Alipay's page, never paid
    ali = _last_order(app)
    job = all_jobs()["payments-expire"]
    assert run_job(app, job, now=utcnow() + timedelta(minutes=4)) is None  # not yet due
    assert _order(app, wx).state == OrderState.CREATED
    summary = run_job(app, job, now=utcnow() + timedelta(minutes=6))
    assert summary.counts == {"paid": 0, "closed": 2, "failed": 0}
    for no in (wx, ali):
        assert _order(app, no).state == OrderState.CLOSED
        assert emu.trades[no].state == "CLOSED"  # closed at the provider too
        assert client.get(f"/pay/o/{no}/state").json["state"] == "closed"
    assert emu.pay(wx) is None  # a closed trade cannot be paid any more
    assert balance(app, resident) == 0


def test_a_lost_notification_is_found_by_the_query(app, client, emu, resident):
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=5000)
    no = _last_order(app)
    emu.pay(no, notify=False)  # paid there; the notification never arrives
    summary = run_job(app, all_jobs()["payments-expire"], now=utcnow() + timedelta(minutes=6))
    assert summary.counts["paid"] == 1
    o = _order(app, no)
    assert (o.state, o.paid_by) == (OrderState.PAID, "query")
    assert balance(app, resident) == 5000
    emu.deliver = lambda url, headers, body: client.post("/pay/notify/wechat", data=body,
                                                          headers=headers).status_code
    assert emu.notify(no) == 204  # the late notification: acknowledged, posts nothing more
    assert balance(app, resident) == 5000


@pytest.mark.parametrize("ua,channel", [(DESKTOP_UA, "wechat_native"), (PHONE_UA, "alipay_wap")])
def test_refund_to_the_original_channel(app, client, emu, deliver_to, resident, ua, channel):
    r = start_topup(app, client, resident, ua, channel, preset=5000)
    if channel == "alipay_wap":
        requests.get(pay_page(r), timeout=10)
    no = _last_order(app)
    emu.pay(no)
    assert balance(app, resident) == 5000
    rules = settings.payments(app.config)
    with app.app_context():
        with pytest.raises(Invalid):
            refunds.ask(None, no, 6000, "too much", rules, utcnow())
        ref = refunds.ask(None, no, 2000, "moving away", rules, utcnow())
        refund_no = ref.refund_no
        # WeChat confirms later; Alipay's signed answer is the result (fund_change Y).
        assert ref.state == (RefundState.PROCESSING if channel == "wechat_native"
                             else RefundState.SUCCEEDED)
    # Held back at once (cannot be spent while under way).
    assert balance(app, resident) == 3000
    assert emu.refunds[refund_no].order_no == no and emu.refunds[refund_no].amount_cents == 2000
    if channel == "wechat_native":
        assert _order(app, no).state == OrderState.REFUNDING
        summary = run_job(app, all_jobs()["payments-refunds"], now=utcnow())
        assert summary.counts["succeeded"] == 1
    with app.app_context():
        ref = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no))
        assert ref.state == RefundState.SUCCEEDED and ref.confirmed_at is not None
        assert ledger.verify() == []
    assert emu.refunds[refund_no].state == "SUCCESS"
    o = _order(app, no)
    assert (o.state, o.refunded_cents) == (OrderState.REFUNDED, 2000)
    assert balance(app, resident) == 3000


def test_a_refund_the_provider_rejects_comes_back(app, client, emu, deliver_to, resident):
    start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=2000)
    no = _last_order(app)
    emu.pay(no)
    emu.refund_outcome = "ABNORMAL"
    rules = settings.payments(app.config)
    with app.app_context():
        refund_no = refunds.ask(None, no, 2000, "", rules, utcnow()).refund_no
    assert balance(app, resident) == 0
    run_job(app, all_jobs()["payments-refunds"], now=utcnow())
    with app.app_context():
        ref = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no))
        assert ref.state == RefundState.FAILED and ref.reversal_id is not None
        assert ledger.verify() == []
    assert balance(app, resident) == 2000
    assert _order(app, no).state == OrderState.PAID
