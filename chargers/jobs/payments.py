"""Jobs of online payments: `payments-expire` queries then closes orders never
confirmed, `payments-refunds` tracks refunds until the provider confirms, and
`payments-reconcile` matches the providers' bills of the previous day. Each does
nothing where no payment channel is configured."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.payments import orders, providers, reconcile, refunds
from . import JobContext, Summary, job


@job("payments-expire", "interval", "Ask the provider about top-up orders unpaid after 5 "
     "minutes: post the paid ones, close the others", minutes=1)
def payments_expire(now: datetime, ctx: JobContext) -> str | None:
    rules = settings.payments(current_app.config)
    if not rules.enabled:
        return None
    c = orders.close_unconfirmed(rules, now)
    if not any(c.values()):
        return None
    return Summary(f"orders: {c['paid']} paid, {c['closed']} closed, {c['failed']} not reached",
                   "payment_orders", c)


@job("payments-refunds", "interval", "Ask the provider about refunds not confirmed yet",
     minutes=2)
def payments_refunds(now: datetime, ctx: JobContext) -> str | None:
    rules = settings.payments(current_app.config)
    if not rules.enabled:
        return None
    c = refunds.track(rules, now)
    if not any(c.values()):
        return None
    return Summary(f"refunds: {c['succeeded']} confirmed, {c['failed']} failed, "
                   f"{c['processing']} still under way", "payment_refunds", c)


# WeChat Pay's trade bill is ready from 10:00 and Alipay's statement from 09:00 the next
# day (Asia/Shanghai): 03:20 UTC is 11:20 there.
@job("payments-reconcile", "cron", "Download the providers' bills of the previous day and "
     "match them with orders and the ledger", hour=3, minute=20)
def payments_reconcile(now: datetime, ctx: JobContext) -> str | None:
    rules = settings.payments(current_app.config)
    if not rules.enabled:
        return None
    day = providers.bill_day(now)
    r = reconcile.run(rules, day, now)
    lines = sum(v["lines"] for v in r.values())
    found = sum(v["mismatches"] for v in r.values())
    return Summary(f"{day}: {lines} line(s), {found} finding(s)", "payments_reconciled",
                   {"lines": lines, "mismatches": found}, [day.isoformat()])
