"""The alley's income and money figures, read from the ledger and nowhere else.

One definition, used by every page and export that shows income (the billing page,
the desk's "today's takings", the money dashboard, the monthly close and its 公示):

- **Income** (收入) is what the ledger credited to the alley's `electricity` and
  `service` takings accounts: charges, less or plus approved adjustments and
  reversals. A session waiting on the review list has no charge posting, so it is no
  income until staff assign it.
- A posting belongs to a period by its **posting time** (记账时间, `Posting.created_at`)
  read in the alley's zone. The monthly close counts postings by the same time, so a
  closed month's totals equal `figures()` over that month.
- **Covered** is split by who bears it: a monthly card (`covered_monthly_cents`) or
  the community for an exempt account (`covered_exempt_cents`); the ledger has one
  `covered` account, the split comes from the charged session's resident account.
- **Top-ups received** and **refunds paid** are net of their reversals (a reversed
  top-up is no longer received); **cash received** is the cash box's movement,
  **online received** the movement of the alley's money at WeChat Pay and Alipay
  (online top-ups − refunds to those channels, fees apart); cash + online always equal
  top-ups − refunds. **Payment fees** are the providers' fees, the alley's expense.

Read-only; imports models and `devices.alleys` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import (
    Alley,
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    Posting,
    ResidentAccount,
)
from ..devices import alleys

# How a period's figures are counted, for the pages to say so (labels.INCOME_BASIS).
BASIS = "posting_time"


@dataclass
class Income:
    """Money figures of one period, in fen, all as positive amounts of what happened."""

    electricity_cents: int = 0
    service_cents: int = 0
    covered_monthly_cents: int = 0
    covered_exempt_cents: int = 0
    waived_cents: int = 0
    topups_cents: int = 0
    refunds_cents: int = 0
    cash_cents: int = 0
    online_cents: int = 0  # received by WeChat Pay / Alipay, net of refunds, before fees
    fees_cents: int = 0  # the payment providers' fees (an expense)
    adjustments_cents: int = 0  # of the takings: adjustments and reversals
    postings: set[int] = field(default_factory=set)

    @property
    def takings_cents(self) -> int:
        """Income: electricity and service takings."""
        return self.electricity_cents + self.service_cents

    @property
    def covered_cents(self) -> int:
        return self.covered_monthly_cents + self.covered_exempt_cents

    @property
    def paid_by_residents_cents(self) -> int:
        """Income charged to residents' balances (income − covered − waived)."""
        return self.takings_cents - self.covered_cents - self.waived_cents


def _rows(alley_id: int, start: datetime | None, end: datetime | None):
    """The one query: every ledger entry of the alley's postings posted in
    [start, end), with its account kind, the posting's kind, the kind of the posting it
    reverses, and the resident account kind of the charged session."""
    reversed_ = aliased(Posting)
    stmt = (select(Posting.id, Posting.created_at, LedgerAccount.kind, Posting.kind,
                   reversed_.kind, ResidentAccount.kind, LedgerEntry.amount_cents)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .outerjoin(reversed_, reversed_.id == Posting.reverses_id)
            .outerjoin(ChargingSession, ChargingSession.id == Posting.session_id)
            .outerjoin(ResidentAccount, ResidentAccount.id == ChargingSession.account_id)
            .where(Posting.alley_id == alley_id))
    if start is not None:
        stmt = stmt.where(Posting.created_at >= start)
    if end is not None:
        stmt = stmt.where(Posting.created_at < end)
    return db.session.execute(stmt)


def add(out: Income, row) -> None:
    """Fold one entry row of `_rows` into `out`."""
    pid, _at, acc_kind, post_kind, reversed_kind, resident_kind, cents = row
    cents = int(cents)
    out.postings.add(pid)
    # What a posting is about: a reversal is about the posting it reverses.
    about = reversed_kind if post_kind == "reversal" and reversed_kind else post_kind
    if acc_kind == "electricity":
        out.electricity_cents += cents
    elif acc_kind == "service":
        out.service_cents += cents
    elif acc_kind == "covered":
        if resident_kind == "monthly":
            out.covered_monthly_cents -= cents
        else:
            out.covered_exempt_cents -= cents
    elif acc_kind == "waived":
        out.waived_cents -= cents
    elif acc_kind == "cash":
        out.cash_cents -= cents
    elif acc_kind in ("pay_wechat", "pay_alipay"):
        if about != "fee":
            out.online_cents -= cents
    elif acc_kind == "pay_fees":
        out.fees_cents -= cents
    elif acc_kind == "resident":
        if about == "topup":
            out.topups_cents += cents
        elif about == "refund":
            out.refunds_cents -= cents
    if acc_kind in ("electricity", "service") and post_kind in ("adjustment", "reversal"):
        out.adjustments_cents += cents


def figures(alley: Alley | int, start: datetime | None = None,
            end: datetime | None = None) -> Income:
    """The alley's figures for postings posted in [start, end) (UTC instants; None =
    open)."""
    alley_id = alley if isinstance(alley, int) else alley.id
    out = Income()
    for row in _rows(alley_id, start, end):
        add(out, row)
    return out


def local_day(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of a local day's midnight and the next one."""
    return (datetime.combine(day, time(), tz).astimezone(UTC),
            datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC))


def local_month(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of the first of `day`'s local month and of the next month."""
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time(), tz).astimezone(UTC),
            datetime.combine(nxt, time(), tz).astimezone(UTC))


def today(alley: Alley, now: datetime) -> Income:
    """Since midnight in the alley's zone."""
    tz = alleys.zone(alley)
    start, _end = local_day(now.astimezone(tz).date(), tz)
    return figures(alley, start, None)


def this_month(alley: Alley, now: datetime) -> Income:
    """Since the 1st of the local month."""
    tz = alleys.zone(alley)
    start, _end = local_month(now.astimezone(tz).date(), tz)
    return figures(alley, start, None)


def by_bucket(alley: Alley, start: datetime | None, end: datetime | None, bucket) -> dict:
    """Figures per bucket: `bucket(local date)` names the bucket of a posting."""
    tz = alleys.zone(alley)
    out: dict = {}
    for row in _rows(alley.id, start, end):
        key = bucket(row[1].astimezone(tz).date())
        add(out.setdefault(key, Income()), row)
    return out


def takings_today(alley_list: Iterable[Alley], now: datetime) -> dict[int, int]:
    """Per alley id: today's income (takings) in fen, by posting time in its zone."""
    return {a.id: today(a, now).takings_cents for a in alley_list}
