"""Refunds of an online top-up to the channel it came from, by the provider's refund
API, tracked until the provider confirms.

The money leaves the resident's balance when staff ask (the posting
`payrefund:<refund_no>`, resident debited, the alley's money at the provider
credited), so it cannot be spent while the refund is under way; the page says
"asked, not confirmed" until the provider confirms. A refund the provider rejects or
never received is reversed (the balance comes back). Cash refunds stay with staff
(billing.accounts.refund)."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...constants import OrderState, RefundState
from ...extensions import db
from ...models import Alley, PaymentOrder, PaymentRefund, Posting, ResidentAccount, User
from ...money import yuan_text
from ...settings import PaymentRule
from .. import scope
from ..billing import ledger
from ..errors import Invalid, NotFound
from . import orders, providers

log = logging.getLogger("chargers.payments")


def _order_in_scope(user: User | None, order_no: str) -> PaymentOrder:
    o = orders.get(order_no)
    if user is not None:
        scope.check_alley(user, db.session.get(Alley, o.alley_id), "pay.order_not_found")
    return o


def ask(user: User | None, order_no: str, amount_cents: int, reason: str, rules: PaymentRule,
        now: datetime) -> PaymentRefund:
    """Refund (part of) a paid order to its channel. At most what is left of the order
    and the resident's balance (read under the ledger lock). Audited. Commits."""
    o = _order_in_scope(user, order_no)
    if o.posting_id is None:
        raise Invalid("pay.refund_not_paid")
    acc = db.session.get(ResidentAccount, o.account_id)
    resident = ledger.resident_account(acc)
    held = ledger.account(o.alley_id, orders.ledger_kind(o.provider))
    ledger.lock(resident, held)
    o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.id == o.id).with_for_update())
    left, bal = o.amount_cents - o.refunded_cents, ledger.balance(acc)
    if not isinstance(amount_cents, int) or not 0 < amount_cents <= min(left, bal):
        db.session.rollback()
        raise Invalid("pay.refund_amount", left=yuan_text(left), balance=yuan_text(bal))
    refund_no = f"R{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(8)}"
    by = user.id if user else None
    p = ledger.post(f"payrefund:{refund_no}", "refund", o.alley_id,
                    [(resident, -amount_cents), (held, amount_cents)], now=now, by=by,
                    method=o.provider, receipt=refund_no, reason=reason[:200])
    ledger.audit("money.refund", o.alley_id, by, now, account=acc.id, amount_cents=amount_cents,
                 method=o.provider, receipt=refund_no, reason=reason[:200], order=o.order_no)
    r = PaymentRefund(refund_no=refund_no, order_id=o.id, alley_id=o.alley_id,
                      amount_cents=amount_cents, state=RefundState.PROCESSING, reason=reason[:200],
                      created_at=now, created_by=by, posting_id=p.id)
    db.session.add(r)
    o.refunded_cents += amount_cents
    o.state = OrderState.REFUNDING
    db.session.commit()
    try:
        st = providers.for_provider(rules, o.provider).refund(
            o.order_no, refund_no, amount_cents, o.amount_cents, reason)
        r.provider_refund_id = st.refund_id
        db.session.commit()
        log.info("refund %s of order %s asked: %d fen", refund_no, o.order_no, amount_cents)
    except providers.ProviderError as exc:
        # Maybe received, maybe not: the tracking job asks until the provider says.
        db.session.rollback()
        log.warning("refund %s of order %s: the provider did not answer (%s); tracked",
                    refund_no, o.order_no, exc)
        return r
    if st.state != "processing":  # the provider's signed answer already says (Alipay)
        confirm(refund_no, o.order_no, st.state, None, now, "answer")
        db.session.refresh(r)
    return r


def _settle(r: PaymentRefund, state: str, now: datetime) -> None:
    o = db.session.get(PaymentOrder, r.order_id)
    if state == "succeeded":
        r.state, r.confirmed_at = RefundState.SUCCEEDED, now
    else:
        r.state, r.confirmed_at = RefundState.FAILED, now
        rev = ledger.reverse(db.session.get(Posting, r.posting_id), now=now, by=None,
                             reason=f"refund {r.refund_no} failed at the provider")
        db.session.flush()
        r.reversal_id = rev.id
        ledger.audit("money.reversal", r.alley_id, None, now, posting=r.posting_id,
                     reversal=rev.id, kind="refund", reason="provider refund failed")
        o.refunded_cents -= r.amount_cents
    pending = db.session.scalar(select(PaymentRefund.id).where(
        PaymentRefund.order_id == o.id, PaymentRefund.state == RefundState.PROCESSING,
        PaymentRefund.id != r.id).limit(1))
    if pending is None:
        o.state = OrderState.REFUNDED if o.refunded_cents > 0 else OrderState.PAID


def confirm(refund_no: str, order_no: str, state: str, amount_cents: int | None,
            now: datetime, by: str) -> str:
    """The provider's verified word on a refund (its notification, its answer or a
    query): `succeeded` or `failed` (the posting reversed). Applied once, under the
    refund's row lock; returns a NoticeOutcome code: `refund_confirmed`, `replayed`
    (already settled: nothing changes), `unknown_order` (no such refund of that order)
    or `amount_mismatch`. Commits."""
    r = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no)
                          .with_for_update())
    o = db.session.get(PaymentOrder, r.order_id) if r is not None else None
    if r is None or o.order_no != order_no:
        db.session.rollback()
        return "unknown_order"
    if amount_cents is not None and amount_cents != r.amount_cents:
        db.session.rollback()
        return "amount_mismatch"
    if r.state != RefundState.PROCESSING:
        settled = "succeeded" if r.state == RefundState.SUCCEEDED else "failed"
        db.session.rollback()
        if settled != state:
            log.error("refund %s: the provider now says %s, it said %s before (%s)",
                      refund_no, state, settled, by)
        return "replayed"
    o = db.session.scalar(select(PaymentOrder).where(PaymentOrder.id == r.order_id)
                          .with_for_update())
    try:
        _settle(r, state, now)
        db.session.commit()
    except IntegrityError:  # settled at the same moment elsewhere (its reversal's key)
        db.session.rollback()
        return "replayed"
    log.info("refund %s of order %s %s (%s)", refund_no, order_no, state, by)
    return "refund_confirmed"


def track(rules: PaymentRule, now: datetime, limit: int = 200) -> dict:
    """Ask the provider about every refund not confirmed yet; confirmed → succeeded,
    rejected or never received → failed (its posting reversed). Commits."""
    counts = {"succeeded": 0, "failed": 0, "processing": 0}
    ids = list(db.session.scalars(select(PaymentRefund.id).where(
        PaymentRefund.state == RefundState.PROCESSING).order_by(PaymentRefund.id).limit(limit)))
    for rid in ids:
        r = db.session.get(PaymentRefund, rid)
        o = db.session.get(PaymentOrder, r.order_id)
        try:
            st = providers.for_provider(rules, o.provider).query_refund(o.order_no, r.refund_no)
        except providers.ProviderError as exc:
            db.session.rollback()
            log.warning("refund %s: query failed, asked again later: %s", r.refund_no, exc)
            counts["processing"] += 1
            continue
        if st.state == "processing":
            counts["processing"] += 1
            continue
        if confirm(r.refund_no, o.order_no, st.state, None, now, "query") == "refund_confirmed":
            counts[st.state] += 1
    return counts


def of_order(order_id: int) -> list[PaymentRefund]:
    return list(db.session.scalars(select(PaymentRefund).where(PaymentRefund.order_id == order_id)
                                   .order_by(PaymentRefund.id)))


def recent(alley_ids: list[int] | None, limit: int = 100) -> list[PaymentRefund]:
    stmt = select(PaymentRefund).order_by(PaymentRefund.id.desc()).limit(limit)
    if alley_ids is not None:
        stmt = stmt.where(PaymentRefund.alley_id.in_(alley_ids))
    return list(db.session.scalars(stmt))


def get(refund_no: str) -> PaymentRefund:
    r = db.session.scalar(select(PaymentRefund).where(PaymentRefund.refund_no == refund_no))
    if r is None:
        raise NotFound("pay.order_not_found")
    return r
