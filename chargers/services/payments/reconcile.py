"""Daily reconciliation with the providers (`payments-reconcile`): the previous day's
WeChat Pay trade bill and Alipay statement, matched line by line with our orders,
refunds and their ledger postings.

- Each provider line (a payment or a refund) is found here by our order or refund
  number, and its amount compared with the order's and with its ledger posting's.
- Findings go onto the staff review list (PaymentMismatch, once per key), with the
  provider's line attached: paid there but not here (`missing_here`), here but not
  there (`missing_there`: a payment or refund we confirmed that day that the bill does
  not list), `amount` (the bill, the order or the posting disagree), `fee` (the fee
  differs from the contract rate).
- The provider's fee of each known line is posted as the alley's expense (posting kind
  `fee`, key `payfee:<provider>:<order or refund no>`: `pay_fees` debited, the money
  at the provider credited; a refund's returned fee the other way).

Runs again harmlessly: postings and findings are keyed. Commits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...constants import MismatchKind, MismatchStatus, PayProvider, RefundState
from ...extensions import db
from ...models import (
    LedgerAccount,
    LedgerEntry,
    PaymentBill,
    PaymentMismatch,
    PaymentOrder,
    PaymentRefund,
    User,
)
from ...settings import PaymentRule
from .. import scope
from ..billing import ledger
from ..errors import Invalid, NotFound
from . import orders, providers

log = logging.getLogger("chargers.payments")


@dataclass
class Line:
    """One provider line, normalised: a payment (`refund_no` empty) or a refund."""

    order_no: str
    refund_no: str
    amount_cents: int
    fee_cents: int  # the provider's fee (a refund's returned fee: negative)
    raw: dict


def wechat_lines(rows: list[dict]) -> list[Line]:
    out = []
    for r in rows:
        fee = providers.yuan_to_fen(r.get("手续费", "0") or "0")
        if r.get("交易状态") == "REFUND":
            out.append(Line(r.get("商户订单号", ""), r.get("商户退款单号", ""),
                            providers.yuan_to_fen(r.get("退款金额", "0") or "0"), fee, r))
        elif r.get("交易状态") == "SUCCESS":
            out.append(Line(r.get("商户订单号", ""), "",
                            providers.yuan_to_fen(r.get("订单金额") or r.get("应结订单金额") or "0"),
                            fee, r))
    return out


def alipay_lines(rows: list[dict]) -> list[Line]:
    out = []
    for r in rows:
        fee = providers.yuan_to_fen(r.get("服务费（元）", "0") or "0")
        amount = providers.yuan_to_fen(r.get("订单金额（元）", "0") or "0")
        if r.get("业务类型") == "退款":
            # A refund's line: negative amount, the fee given back positive.
            out.append(Line(r.get("商户订单号", ""), r.get("退款批次号/请求号", ""), -amount, -fee, r))
        elif r.get("业务类型") == "交易":
            out.append(Line(r.get("商户订单号", ""), "", amount, -fee, r))
    return out


def expected_fee(amount_cents: int, bp: int) -> int:
    return int((Decimal(amount_cents) * bp / 10000).quantize(Decimal(1), ROUND_HALF_UP))


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), providers.CST)
    return start, start + timedelta(days=1)


def _posted_resident_cents(posting_id: int | None) -> int | None:
    """What a posting moved on the resident's account (the ledger's side of a line)."""
    if posting_id is None:
        return None
    return db.session.scalar(
        select(LedgerEntry.amount_cents).join(LedgerAccount)
        .where(LedgerEntry.posting_id == posting_id, LedgerAccount.kind == "resident"))


class _Run:
    def __init__(self, provider: str, day: date, now: datetime, bp: int):
        self.provider, self.day, self.now, self.bp = provider, day, now, bp
        self.found = 0
        self.fees = 0

    def mismatch(self, kind: str, ref: str, alley_id: int | None, ours: int | None,
                 theirs: int | None, raw: dict | None) -> None:
        key = f"{self.provider}:{self.day.isoformat()}:{kind}:{ref}"[:120]
        if db.session.scalar(select(PaymentMismatch.id).where(PaymentMismatch.key == key)):
            self.found += 1
            return
        db.session.add(PaymentMismatch(key=key, provider=self.provider,
                                       bill_date=self.day.isoformat(), kind=kind,
                                       alley_id=alley_id, order_no=ref[:64], ours_cents=ours,
                                       theirs_cents=theirs, line=raw,
                                       status=MismatchStatus.OPEN, created_at=self.now))
        self.found += 1
        log.warning("reconciliation %s %s: %s %s (ours %s, theirs %s)", self.provider, self.day,
                    kind, ref, ours, theirs)

    def fee(self, alley_id: int, ref: str, fee_cents: int) -> None:
        if not fee_cents:
            return
        key = f"payfee:{self.provider}:{ref}"
        if ledger.exists(key):
            return
        fees = ledger.account(alley_id, "pay_fees")
        held = ledger.account(alley_id, orders.ledger_kind(self.provider))
        ledger.post(key, "fee", alley_id, [(fees, -fee_cents), (held, fee_cents)], now=self.now,
                    by=None, method=self.provider, receipt=ref[:64])
        self.fees += fee_cents


def run(rules: PaymentRule, day: date, now: datetime) -> dict:
    """Reconcile every configured provider's bill of `day` (the providers' date)."""
    out = {}
    for provider, on, bp in ((PayProvider.WECHAT, rules.wechat.enabled, rules.wechat_fee_bp),
                             (PayProvider.ALIPAY, rules.alipay.enabled, rules.alipay_fee_bp)):
        if on:
            out[provider] = reconcile_one(rules, provider, day, now, bp)
    return out


def reconcile_one(rules: PaymentRule, provider: str, day: date, now: datetime, bp: int) -> dict:
    """One provider's bill of `day` against our orders and refunds: each line matched
    or a finding; ours the bill lacks are findings too. Commits."""
    rows = providers.for_provider(rules, provider).bill(day)
    lines = wechat_lines(rows) if provider == PayProvider.WECHAT else alipay_lines(rows)
    run_ = _Run(provider, day, now, bp)
    seen_orders, seen_refunds, matched = set(), set(), 0
    for ln in lines:
        if ln.refund_no:
            seen_refunds.add(ln.refund_no)
            matched += _match_refund(run_, ln)
        else:
            seen_orders.add(ln.order_no)
            matched += _match_order(run_, ln, bp)
    _missing_there(run_, provider, day, seen_orders, seen_refunds)
    bill = db.session.scalar(select(PaymentBill).where(PaymentBill.provider == provider,
                                                       PaymentBill.bill_date == day.isoformat()))
    if bill is None:
        bill = PaymentBill(provider=provider, bill_date=day.isoformat(), fetched_at=now)
        db.session.add(bill)
    bill.lines, bill.matched, bill.mismatches = len(lines), matched, run_.found
    bill.fees_cents = sum(ln.fee_cents for ln in lines)
    bill.fetched_at = now
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise
    log.info("reconciliation %s %s: %d lines, %d matched, %d findings, fees %d fen", provider,
             day, len(lines), matched, run_.found, run_.fees)
    return {"lines": len(lines), "matched": matched, "mismatches": run_.found,
            "fees_cents": run_.fees}


def _match_refund(run_: _Run, ln) -> bool:
    """A refund line: ours succeeded for the same amount, posted as such."""
    r = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == ln.refund_no))
    if r is None or r.state != RefundState.SUCCEEDED:
        run_.mismatch(MismatchKind.MISSING_HERE, ln.refund_no, r.alley_id if r else None,
                      r.amount_cents if r else None, ln.amount_cents, ln.raw)
        return False
    posted = _posted_resident_cents(r.posting_id)
    ok = ln.amount_cents == r.amount_cents and (posted is None or -posted == ln.amount_cents)
    if not ok:
        run_.mismatch(MismatchKind.AMOUNT, ln.refund_no, r.alley_id, r.amount_cents,
                      ln.amount_cents, ln.raw)
    run_.fee(r.alley_id, ln.refund_no, ln.fee_cents)
    return ok


def _match_order(run_: _Run, ln, bp: int) -> bool:
    """A payment line: ours paid and posted for the same amount, the fee as agreed."""
    o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.order_no == ln.order_no))
    if o is None or o.posting_id is None:
        run_.mismatch(MismatchKind.MISSING_HERE, ln.order_no, o.alley_id if o else None,
                      o.amount_cents if o else None, ln.amount_cents, ln.raw)
        return False
    posted = _posted_resident_cents(o.posting_id)
    ok = True
    if ln.amount_cents != o.amount_cents or posted != ln.amount_cents:
        run_.mismatch(MismatchKind.AMOUNT, ln.order_no, o.alley_id, o.amount_cents,
                      ln.amount_cents, ln.raw)
        ok = False
    if ln.fee_cents != expected_fee(ln.amount_cents, bp):
        run_.mismatch(MismatchKind.FEE, ln.order_no, o.alley_id,
                      expected_fee(ln.amount_cents, bp), ln.fee_cents, ln.raw)
        ok = False
    run_.fee(o.alley_id, ln.order_no, ln.fee_cents)
    return ok


def _missing_there(run_: _Run, provider: str, day: date, seen_orders: set,
                   seen_refunds: set) -> None:
    """Our paid orders and succeeded refunds of that day the bill does not list."""
    start, end = _day_bounds(day)
    for o in db.session.scalars(select(PaymentOrder).where(
            PaymentOrder.provider == provider, PaymentOrder.posting_id.is_not(None),
            PaymentOrder.paid_at >= start, PaymentOrder.paid_at < end)):
        if o.order_no not in seen_orders:
            run_.mismatch(MismatchKind.MISSING_THERE, o.order_no, o.alley_id, o.amount_cents,
                          None, None)
    for r in db.session.scalars(select(PaymentRefund).join(PaymentOrder).where(
            PaymentOrder.provider == provider, PaymentRefund.state == RefundState.SUCCEEDED,
            PaymentRefund.confirmed_at >= start, PaymentRefund.confirmed_at < end)):
        if r.refund_no not in seen_refunds:
            run_.mismatch(MismatchKind.MISSING_THERE, r.refund_no, r.alley_id, r.amount_cents,
                          None, None)


def open_findings(user: User | None, limit: int = 200) -> list[PaymentMismatch]:
    """The review list: open findings first, newest first (in the user's alleys; a
    finding of no known alley is shown to admins only)."""
    stmt = select(PaymentMismatch).order_by(PaymentMismatch.status, PaymentMismatch.id.desc())
    ids = scope.visible_alley_ids(user) if user is not None else None
    if ids is not None:
        stmt = stmt.where(PaymentMismatch.alley_id.in_(ids))
    return list(db.session.scalars(stmt.limit(limit)))


def bills(limit: int = 30) -> list[PaymentBill]:
    return list(db.session.scalars(select(PaymentBill).order_by(PaymentBill.bill_date.desc(),
                                                                PaymentBill.provider)
                                   .limit(limit)))


def resolve(user: User | None, mismatch_id: int, note: str, now: datetime) -> PaymentMismatch:
    """A person looked at a finding and says what was done. Commits."""
    m = db.session.get(PaymentMismatch, mismatch_id)
    ids = scope.visible_alley_ids(user) if user is not None else None
    if m is None or (ids is not None and m.alley_id not in ids):
        raise NotFound("pay.mismatch_not_found")
    if not note.strip():
        raise Invalid("review.reason_required")
    m.status, m.note, m.resolved_at = MismatchStatus.RESOLVED, note.strip()[:2000], now
    m.resolved_by = user.id if user else None
    db.session.commit()
    return m
