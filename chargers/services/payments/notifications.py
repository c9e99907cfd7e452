"""A provider's notification of a payment or of a refund's result: verified by its SDK
(providers.read_notice), then the order's top-up posted once (orders.mark_paid) or the
refund settled once (refunds.confirm; the tracking job's queries stay the fallback).
Whatever it turns out to be is recorded as a PaymentNotice (counted in /metrics by
outcome) and logged; a rejected or replayed notification changes nothing else.

The answer to the provider: a verified notification (posted, replayed, refund_confirmed) is
acknowledged so that it stops retrying; a rejected one is not."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ...constants import NoticeOutcome, PayProvider
from ...extensions import db
from ...models import PaymentNotice
from ...settings import PaymentRule
from . import orders, providers, refunds

log = logging.getLogger("chargers.payments")
ACCEPTED = (NoticeOutcome.POSTED, NoticeOutcome.REPLAYED, NoticeOutcome.REFUND_CONFIRMED)


@dataclass
class Handled:
    outcome: str

    @property
    def acknowledged(self) -> bool:
        return self.outcome in ACCEPTED


def _record(provider: str, outcome: str, order_no: str, detail: str, now: datetime) -> Handled:
    db.session.add(PaymentNotice(provider=provider, outcome=outcome, order_no=order_no[:64],
                                 at=now, detail=detail[:200]))
    db.session.commit()
    level = logging.INFO if outcome in ACCEPTED else logging.WARNING
    log.log(level, "payment notification from %s: %s (order %s) %s", provider, outcome,
            order_no or "-", detail)
    return Handled(outcome)


def _apply(provider: str, n: providers.Notice, now: datetime) -> Handled:
    if n.outcome is not None:
        return _record(provider, n.outcome, n.order_no, n.detail, now)
    if n.kind == "refund":
        outcome = refunds.confirm(n.refund_no, n.order_no, n.refund_state, n.amount_cents, now,
                                  "notify")
        return _record(provider, outcome, n.order_no,
                       f"refund {n.refund_no} {n.refund_state} {n.detail}".strip(), now)
    if n.amount_cents is None:
        return _record(provider, NoticeOutcome.MALFORMED, n.order_no, "amount", now)
    outcome = orders.mark_paid(n.order_no, n.txn, n.amount_cents, n.paid_at, now, "notify")
    return _record(provider, outcome, n.order_no, f"txn {n.txn}"[:200], now)


def wechat(headers, body: bytes, rules: PaymentRule, now: datetime) -> Handled:
    """A WeChat Pay v3 notification (signed headers, AES-GCM encrypted resource)."""
    if not rules.wechat.enabled:
        return _record(PayProvider.WECHAT, NoticeOutcome.OTHER_MERCHANT, "", "not configured", now)
    n = providers.WeChat(rules).read_notice(headers, body, now, rules.notice_max_age_s)
    return _apply(PayProvider.WECHAT, n, now)


def alipay(form: dict, rules: PaymentRule, now: datetime) -> Handled:
    """An Alipay asynchronous notification (form fields, RSA2 signature)."""
    if not rules.alipay.enabled:
        return _record(PayProvider.ALIPAY, NoticeOutcome.OTHER_MERCHANT, "", "not configured", now)
    n = providers.Alipay(rules).read_notice(form, now, rules.notice_max_age_s)
    return _apply(PayProvider.ALIPAY, n, now)


def counts() -> dict[tuple[str, str], int]:
    """(provider, outcome) → notifications so far (for /metrics)."""
    return {(p, o): int(n) for p, o, n in db.session.execute(
        select(PaymentNotice.provider, PaymentNotice.outcome, func.count())
        .group_by(PaymentNotice.provider, PaymentNotice.outcome))}


def recent(limit: int = 50) -> list[PaymentNotice]:
    return list(db.session.scalars(select(PaymentNotice).order_by(PaymentNotice.id.desc())
                                   .limit(limit)))
