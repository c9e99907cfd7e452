"""Daily reconciliation through the emulator's real bill formats (WeChat Pay's gzip CSV
trade bill, Alipay's zip of GBK CSV) and the SDKs: a clean day matches and posts the
fees as the alley's expense; each kind of mismatch lands on the review list with the
provider's line; a second run adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers import settings
from chargers.devtools.payemu import CST, Trade
from chargers.extensions import db
from chargers.jobs import all_jobs, run_job
from chargers.models import (
    LedgerAccount,
    MonthClose,
    PaymentBill,
    PaymentMismatch,
    Posting,
    utcnow,
)
from chargers.services.billing import income, ledger, monthly_close
from chargers.services.payments import reconcile, refunds

from .payments_support import (
    DESKTOP_UA,
    PHONE_UA,
    alley_id,
    pay_through,
    with_emulator,
)


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _pay(app, client, emu, resident, ua, channel, fen) -> str:
    return pay_through(app, client, emu, resident, channel, fen, ua)


def _findings(app) -> dict:
    with app.app_context():
        return {(m.provider, m.kind, m.order_no): m.line for m in
                db.session.scalars(select(PaymentMismatch))}


def test_a_clean_day_matches_and_posts_the_fees(app, client, emu, deliver_to, resident):
    _pay(app, client, emu, resident, DESKTOP_UA, "wechat_native", 10000)
    _pay(app, client, emu, resident, PHONE_UA, "alipay_wap", 5000)
    day = datetime.now(UTC).astimezone(CST).date()
    rules = settings.payments(app.config)
    with app.app_context():
        out = reconcile.run(rules, day, utcnow())
        assert out["wechat"] == {"lines": 1, "matched": 1, "mismatches": 0, "fees_cents": 60}
        assert out["alipay"] == {"lines": 1, "matched": 1, "mismatches": 0, "fees_cents": 30}
        fees = db.session.scalar(select(LedgerAccount).where(LedgerAccount.kind == "pay_fees"))
        assert fees.balance_cents == -90  # the alley's expense
        assert db.session.query(PaymentMismatch).count() == 0
        # Online money and fees apart from cash in the one definition of income.
        f = income.figures(alley_id(app))
        assert (f.topups_cents, f.online_cents, f.cash_cents, f.fees_cents) == (15000, 15000, 0, 90)
        again = reconcile.run(rules, day, utcnow())  # runs again harmlessly
        assert again["wechat"]["fees_cents"] == 0
        assert db.session.query(Posting).filter(Posting.kind == "fee").count() == 2
        assert ledger.verify() == []
        # The month's close (and so its 公示) holds online money and fees apart from cash.
        later = utcnow() + timedelta(days=40)
        closed = monthly_close.close_due(later, settings.close(app.config)).closed
        assert closed
        mcs = db.session.scalars(select(MonthClose)).all()
        assert sum(m.online_cents for m in mcs) == 15000 and sum(m.fees_cents for m in mcs) == 90
        assert sum(m.topups_cents for m in mcs) == 15000
        assert ledger.verify() == []  # verify_closes recomputes them from the postings


def test_each_kind_of_mismatch_is_found(app, client, emu, deliver_to, resident):
    ok = _pay(app, client, emu, resident, DESKTOP_UA, "wechat_native", 1000)
    dropped = _pay(app, client, emu, resident, DESKTOP_UA, "wechat_native", 2000)
    other_amount = _pay(app, client, emu, resident, PHONE_UA, "alipay_wap", 5000)
    other_fee = _pay(app, client, emu, resident, PHONE_UA, "alipay_wap", 10000)
    emu.bill_tweaks[dropped] = {"drop": True}  # here, not there
    emu.bill_tweaks[other_amount] = {"amount_cents": 4000}
    emu.bill_tweaks[other_fee] = {"fee_cents": 100}  # contract: 0.6 % = 60
    stranger = Trade("wechat", "T20990101000000ffffffffffffffff", 3000, "", kind="NATIVE",
                     state="SUCCESS", txn="4200stranger", mchid=emu.mchid, appid=emu.appid,
                     paid_at=datetime.now(UTC), fee_cents=18)
    emu.extra_lines.append(stranger)  # paid there, not here
    # A refund confirmed there; its bill line matched with ours.
    rules = settings.payments(app.config)
    with app.app_context():
        refund_no = refunds.ask(None, ok, 500, "", rules, utcnow()).refund_no
        refunds.track(rules, utcnow())
    summary = run_job(app, all_jobs()["payments-reconcile"],
                      now=datetime.now(UTC) + timedelta(days=1))
    assert summary.counts == {"lines": 5, "mismatches": 4}
    found = _findings(app)
    assert set(found) == {("wechat", "missing_there", dropped),
                          ("wechat", "missing_here", stranger.order_no),
                          ("alipay", "amount", other_amount),
                          ("alipay", "fee", other_fee)}
    # The provider's line is attached as it was in the bill.
    assert found[("wechat", "missing_here", stranger.order_no)]["微信订单号"] == "4200stranger"
    assert found[("alipay", "amount", other_amount)]["订单金额（元）"] == "40.00"
    assert found[("wechat", "missing_there", dropped)] is None
    with app.app_context():
        bills = {b.provider: b for b in db.session.scalars(select(PaymentBill))}
        assert (bills["wechat"].lines, bills["wechat"].matched) == (3, 2)  # ok + its refund
        assert (bills["alipay"].lines, bills["alipay"].mismatches) == (2, 2)
        refund_fee = db.session.scalar(select(Posting).where(Posting.key == f"payfee:wechat:{refund_no}"))
        assert refund_fee is not None  # the fee WeChat gives back on a refund
        assert ledger.verify() == []
    # Once found, not found again.
    run_job(app, all_jobs()["payments-reconcile"], now=datetime.now(UTC) + timedelta(days=1))
    assert len(_findings(app)) == 4
