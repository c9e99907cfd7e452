"""Refund results from the providers, through the emulator and the real SDKs: WeChat
Pay's REFUND.* notification (signed, AES-GCM encrypted) settles a refund once — a
duplicate changes nothing, a forged, expired, other-merchant, undecryptable or
wrong-amount one changes nothing and is counted; Alipay answers a refund synchronously
(fund_change Y) and its later notification of the refund is acknowledged once; the
tracking job's query stays the fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from chargers import settings
from chargers.constants import OrderState, RefundState
from chargers.devtools.payemu import _key
from chargers.extensions import db
from chargers.jobs import all_jobs, run_job
from chargers.models import PaymentNotice, PaymentOrder, PaymentRefund, Posting, utcnow
from chargers.services.billing import ledger
from chargers.services.payments import refunds

from .payments_support import balance, pay_through, with_emulator


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _paid(app, client, emu, resident, channel="wechat_native", fen=5000) -> str:
    no = pay_through(app, client, emu, resident, channel, fen)
    assert balance(app, resident) == fen
    return no


def _ask(app, no, fen) -> str:
    with app.app_context():
        return refunds.ask(None, no, fen, "moving away", settings.payments(app.config),
                           utcnow()).refund_no


def _refund(app, refund_no) -> PaymentRefund:
    with app.app_context():
        r = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no))
        db.session.expunge(r)
        return r


def _notices(app) -> dict:
    with app.app_context():
        return dict(db.session.execute(select(PaymentNotice.outcome, func.count())
                                       .group_by(PaymentNotice.outcome)).all())


def _postings(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Posting))


def test_wechat_refund_notification_settles_once(app, client, emu, deliver_to, resident):
    no = _paid(app, client, emu, resident)
    refund_no = _ask(app, no, 2000)
    assert _refund(app, refund_no).state == RefundState.PROCESSING
    assert emu.refunds[refund_no].notify_url.endswith("/pay/notify/wechat")
    assert emu.notify_refund(refund_no) == 204  # REFUND.SUCCESS, verified and decrypted
    r = _refund(app, refund_no)
    assert r.state == RefundState.SUCCEEDED and r.confirmed_at is not None
    with app.app_context():
        o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.order_no == no))
        assert (o.state, o.refunded_cents) == (OrderState.REFUNDED, 2000)
        assert ledger.verify() == []
    posted = _postings(app)
    # WeChat repeats the notification (and a copy may cross our own query): nothing moves.
    assert emu.notify_refund(refund_no) == 204
    assert run_job(app, all_jobs()["payments-refunds"], now=utcnow()) is None  # nothing left
    assert _postings(app) == posted and balance(app, resident) == 3000
    assert _notices(app) == {"posted": 1, "refund_confirmed": 1, "replayed": 1}


def test_wechat_refund_abnormal_gives_the_money_back_once(app, client, emu, deliver_to,
                                                          resident):
    no = _paid(app, client, emu, resident, fen=2000)
    emu.refund_outcome = "ABNORMAL"
    refund_no = _ask(app, no, 2000)
    assert balance(app, resident) == 0
    assert emu.notify_refund(refund_no) == 204  # REFUND.ABNORMAL
    r = _refund(app, refund_no)
    assert r.state == RefundState.FAILED and r.reversal_id is not None
    assert balance(app, resident) == 2000
    # The same notification again, byte for byte: acknowledged, nothing reversed twice.
    headers, body = emu.wechat_refund_notice(refund_no)
    assert client.post("/pay/notify/wechat", data=body, headers=headers).status_code == 204
    assert balance(app, resident) == 2000
    with app.app_context():
        assert ledger.verify() == []
        assert db.session.scalar(select(PaymentOrder.state)
                                 .where(PaymentOrder.order_no == no)) == OrderState.PAID


def test_forged_wechat_refund_notifications_change_nothing(app, client, emu, resident):
    # Notifications go into the test client (the payment's; the refund's are posted here).
    emu.deliver = lambda url, headers, body: client.post("/pay/notify/wechat", data=body,
                                                          headers=headers).status_code
    no = _paid(app, client, emu, resident, fen=3000)
    refund_no = _ask(app, no, 1000)
    with emu.lock:
        emu._settle_refund(emu.refunds[refund_no])  # succeeded there
    old = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp())
    forgeries = {
        "bad_signature": emu.wechat_refund_notice(refund_no, sign_key=_key()),
        "expired": emu.wechat_refund_notice(refund_no, timestamp=old),
        "other_merchant": emu.wechat_refund_notice(refund_no, mchid="1900000999"),
        "undecryptable": emu.wechat_refund_notice(refund_no, apiv3_key="0" * 32),
        "amount_mismatch": emu.wechat_refund_notice(refund_no, amount_cents=3000),
    }
    for name, (headers, body) in forgeries.items():
        r = client.post("/pay/notify/wechat", data=body, headers=headers)
        assert r.status_code == 400, name
    assert _refund(app, refund_no).state == RefundState.PROCESSING
    counts = _notices(app)
    assert (counts["bad_signature"], counts["expired"], counts["other_merchant"],
            counts["amount_mismatch"]) == (2, 1, 1, 1)
    assert "refund_confirmed" not in counts
    # Polling stays the fallback: the job finds it succeeded.
    summary = run_job(app, all_jobs()["payments-refunds"], now=utcnow())
    assert summary.counts["succeeded"] == 1
    assert _refund(app, refund_no).state == RefundState.SUCCEEDED
    assert balance(app, resident) == 2000


def test_a_refund_notification_naming_no_refund_of_ours(app, client, emu, deliver_to, resident):
    no = _paid(app, client, emu, resident, fen=3000)
    refund_no = _ask(app, no, 1000)
    with app.app_context():  # forgotten here (as if another system's refund)
        db.session.execute(PaymentRefund.__table__.update()
                           .where(PaymentRefund.refund_no == refund_no)
                           .values(refund_no="R00000000000000ffffffffffffffff"))
        db.session.commit()
    assert emu.notify_refund(refund_no) == 400
    assert _notices(app).get("unknown_order") == 1


def test_alipay_refund_answered_at_once_and_its_notification_acknowledged_once(
        app, client, emu, deliver_to, resident):
    no = _paid(app, client, emu, resident, channel="alipay_wap", fen=5000)
    refund_no = _ask(app, no, 5000)
    r = _refund(app, refund_no)
    assert r.state == RefundState.SUCCEEDED  # fund_change Y, in the SDK-verified answer
    assert balance(app, resident) == 0
    posted = _postings(app)
    # Alipay's later notification of the refund (a full refund: TRADE_CLOSED).
    form = emu.alipay_refund_notice(refund_no)
    assert form["trade_status"] == "TRADE_CLOSED" and form["out_biz_no"] == refund_no
    for _ in range(2):
        r = client.post("/pay/notify/alipay", data=urlencode(form),
                        content_type="application/x-www-form-urlencoded")
        assert r.get_data(as_text=True) == "success"  # not retried for ever
    assert _postings(app) == posted
    # Forged: another key; another app.
    for bad in (emu.alipay_refund_notice(refund_no, sign_key=_key()),
                emu.alipay_refund_notice(refund_no, app_id="2021009999999999")):
        r = client.post("/pay/notify/alipay", data=urlencode(bad),
                        content_type="application/x-www-form-urlencoded")
        assert r.get_data(as_text=True) == "fail"
    counts = _notices(app)
    assert counts["replayed"] == 2 and counts["bad_signature"] == 1
    assert counts["other_merchant"] == 1


def test_alipay_refund_not_made_at_once_is_settled_by_its_notification(
        app, client, emu, deliver_to, resident):
    no = _paid(app, client, emu, resident, channel="alipay_wap", fen=5000)
    emu.refund_outcome = "PROCESSING"  # fund_change N: the query or the notification decides
    refund_no = _ask(app, no, 2000)
    assert _refund(app, refund_no).state == RefundState.PROCESSING
    summary = run_job(app, all_jobs()["payments-refunds"], now=utcnow())
    assert summary.counts["processing"] == 1
    emu.refund_outcome = "SUCCESS"
    assert emu.notify_refund(refund_no) == 200
    assert _refund(app, refund_no).state == RefundState.SUCCEEDED
    assert emu.alipay_refund_notice(refund_no)["trade_status"] == "TRADE_SUCCESS"  # partial
    assert balance(app, resident) == 3000
    assert _notices(app)["refund_confirmed"] == 1
