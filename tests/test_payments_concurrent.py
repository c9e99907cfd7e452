"""The payment paths that lock rows, with real concurrency (threads, each with its own
connection), on SQLite and on PostgreSQL (a throwaway schema): a notification and the
expiry job's query finding the same order paid at the same moment; one notification
delivered several times at once; a refund's notification crossing the tracking job's
query. Each top-up is posted exactly once, each refund settled once, and
`billing verify` agrees."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select

from chargers import settings
from chargers.constants import RefundState
from chargers.extensions import db
from chargers.models import PaymentOrder, PaymentRefund, Posting, utcnow
from chargers.services.billing import ledger
from chargers.services.payments import orders, refunds

from .payments_support import DESKTOP_UA, PHONE_UA, balance, pay_page, start_topup, with_emulator
from .pg_schema import throwaway_schema

ROUNDS = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def app_config(app_config, emu, tmp_path, request):
    cfg = with_emulator(app_config, emu, tmp_path)
    if request.param == "sqlite":
        yield cfg
        return
    with throwaway_schema("chargers_paycc") as url:
        cfg["SQLALCHEMY_DATABASE_URI"] = url
        yield cfg


def together(*fns) -> list:
    """Run the callables in threads released at the same instant; their results (an
    exception is returned, not raised)."""
    gate = threading.Barrier(len(fns))
    out: list = [None] * len(fns)

    def run(i, fn):
        gate.wait()
        try:
            out[i] = fn()
        except Exception as exc:  # noqa: BLE001 - asserted by the caller
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def _last_order(app) -> str:
    with app.app_context():
        return db.session.scalars(select(PaymentOrder.order_no)
                                  .order_by(PaymentOrder.id.desc())).first()


def _postings(app, key: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Posting)
                                 .where(Posting.key == key))


def _is_pg(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def test_notification_and_expiry_query_at_once_post_once(app, client, emu, resident):
    rules = settings.payments(app.config)
    later = utcnow() + timedelta(minutes=6)
    for i in range(ROUNDS):
        start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=1000)
        no = _last_order(app)
        emu.pay(no, notify=False)  # paid there; the notification and the job race
        headers, body = emu.wechat_notice(no)

        def notify(headers=headers, body=body):
            return app.test_client().post("/pay/notify/wechat", data=body,
                                          headers=headers).status_code

        def expire():
            with app.app_context():
                return orders.close_unconfirmed(rules, later)

        got = together(notify, expire)
        assert _postings(app, f"paytopup:{no}") == 1, (i, got)
        if _is_pg(app):  # row locks: both finish cleanly, one posts, one finds it paid
            assert got[0] == 204, got
            assert got[1] == {"paid": 1, "closed": 0, "failed": 0} or \
                got[1] == {"paid": 0, "closed": 0, "failed": 0}, got
    assert balance(app, resident) == 1000 * ROUNDS
    with app.app_context():
        assert ledger.verify() == []
        assert db.session.scalar(select(func.count()).select_from(PaymentOrder)
                                 .where(PaymentOrder.posting_id.is_(None))) == 0


@pytest.mark.parametrize("channel", ["wechat_native", "alipay_wap"])
def test_a_notification_delivered_four_times_at_once_posts_once(app, client, emu, resident,
                                                                channel):
    for _ in range(ROUNDS // 2):
        r = start_topup(app, client, resident, DESKTOP_UA if channel == "wechat_native"
                        else PHONE_UA, channel, preset=2000)
        if channel == "alipay_wap":
            requests.get(pay_page(r), timeout=10)
        no = _last_order(app)
        emu.pay(no, notify=False)
        if channel == "wechat_native":
            headers, body = emu.wechat_notice(no)
            path = "/pay/notify/wechat"
        else:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            body, path = urlencode(emu.alipay_notice(no)).encode(), "/pay/notify/alipay"

        def deliver(headers=headers, body=body, path=path):
            r = app.test_client().post(path, data=body, headers=headers)
            return r.status_code, r.get_data(as_text=True)

        got = together(*[deliver] * 4)
        assert _postings(app, f"paytopup:{no}") == 1, got
        if _is_pg(app):  # every copy acknowledged: the provider stops retrying
            assert all(g[0] in (200, 204) and g[1] in ("", "success") for g in got), got
    assert balance(app, resident) == 2000 * (ROUNDS // 2)
    with app.app_context():
        assert ledger.verify() == []


def test_refund_notification_and_tracking_query_at_once_settle_once(app, client, emu,
                                                                    deliver_to, resident):
    rules = settings.payments(app.config)
    emu.refund_outcome = "ABNORMAL"  # a failed refund: its reversal must happen once
    for _ in range(ROUNDS // 2):
        start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=1000)
        no = _last_order(app)
        emu.pay(no)
        with app.app_context():
            refund_no = refunds.ask(None, no, 1000, "", rules, utcnow()).refund_no
        with emu.lock:
            emu._settle_refund(emu.refunds[refund_no])
        headers, body = emu.wechat_refund_notice(refund_no)

        def notify(headers=headers, body=body):
            return app.test_client().post("/pay/notify/wechat", data=body,
                                          headers=headers).status_code

        def track():
            with app.app_context():
                return refunds.track(rules, utcnow())

        got = together(notify, track, notify)
        with app.app_context():
            r = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no))
            assert r.state == RefundState.FAILED
            assert db.session.scalar(select(func.count()).select_from(Posting)
                                     .where(Posting.reverses_id == r.posting_id)) == 1, got
        if _is_pg(app):
            assert got[0] == 204 and got[2] == 204, got
    assert balance(app, resident) == 1000 * (ROUNDS // 2)
    with app.app_context():
        assert ledger.verify() == []
