"""Energy reconciliation: the grid meter readings / bill staff enter for an alley's
month, compared with the piles' metered energy of the closed month.

loss % = (grid kWh − metered kWh) / grid kWh × 100, rounded half up to 0.1 %, integer
arithmetic on Wh (no floats). A month is flagged when the loss exceeds the threshold
(`CloseRule.loss_pct`, config RECONCILE_LOSS_PCT): a few percent is line loss, much
more a faulty meter or theft. The difference in money is the month's electricity
takings minus the grid bill.

The grid bill may be entered or corrected until the month is published (then it is
copied into the published month and locked). Functions that commit say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import select

from ...extensions import db
from ...models import GridBill, MonthClose, User
from ...money import yuan_text
from ...settings import CloseRule
from .. import scope
from ..devices import alleys
from ..errors import Conflict, Invalid
from . import ledger

MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
MAX_WH = 10**12


def kwh_to_wh(text: str | None) -> int | None:
    """'1234.5' kWh → 1234500 Wh; None/'' → None; Invalid on anything else."""
    if text is None or str(text).strip() == "":
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise Invalid("grid.kwh") from None
    if not value.is_finite() or value < 0 or value * 1000 > MAX_WH:
        raise Invalid("grid.kwh")
    return int((value * 1000).to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True)
class GridInput:
    month: str
    grid_kwh: str | None = None  # consumption; or computed from the readings
    amount_cents: int = 0
    reading_start_kwh: str | None = None
    reading_end_kwh: str | None = None
    note: str = ""


def set_grid_bill(user: User | None, slug: str, data: GridInput, now: datetime) -> GridBill:
    """Enter (or correct) the grid readings/bill of a month; refused once the month is
    published. Audited. Commits."""
    alley = alleys.get_alley(user, slug)
    scope.check_alley(user, alley)
    if not MONTH_RE.match(data.month or ""):
        raise Invalid("grid.month")
    if not isinstance(data.amount_cents, int) or not 0 <= data.amount_cents <= 10**10:
        raise Invalid("money.amount", max=yuan_text(10**10))
    start, end = kwh_to_wh(data.reading_start_kwh), kwh_to_wh(data.reading_end_kwh)
    wh = kwh_to_wh(data.grid_kwh)
    if wh is None:
        if start is None or end is None or end < start:
            raise Invalid("grid.kwh")
        wh = end - start
    published = db.session.scalar(select(MonthClose.id).where(
        MonthClose.alley_id == alley.id, MonthClose.month == data.month,
        MonthClose.published_at.is_not(None)))
    if published:
        raise Conflict("grid.published", month=data.month)
    row = db.session.scalar(select(GridBill).where(GridBill.alley_id == alley.id,
                                                   GridBill.month == data.month))
    if row is None:
        row = GridBill(alley_id=alley.id, month=data.month)
        db.session.add(row)
    row.reading_start_wh, row.reading_end_wh, row.grid_wh = start, end, wh
    row.amount_cents, row.note = data.amount_cents, (data.note or "")[:255]
    row.entered_at, row.entered_by = now, user.id if user else None
    ledger.audit("grid.entered", alley.id, user.id if user else None, now, month=data.month,
                 grid_wh=wh, amount_cents=data.amount_cents)
    db.session.commit()
    return row


def grid_bill(alley_id: int, month: str) -> GridBill | None:
    return db.session.scalar(select(GridBill).where(GridBill.alley_id == alley_id,
                                                    GridBill.month == month))


@dataclass(frozen=True)
class Reconciliation:
    metered_wh: int
    grid_wh: int | None
    grid_cents: int | None
    loss_wh: int | None
    loss_permille: int | None  # tenths of a percent, e.g. 87 = 8.7 %
    flagged: bool
    takings_cents: int  # electricity + service
    difference_cents: int | None  # electricity takings − grid bill

    @property
    def loss_pct_text(self) -> str:
        if self.loss_permille is None:
            return "—"
        sign = "-" if self.loss_permille < 0 else ""
        v = abs(self.loss_permille)
        return f"{sign}{v // 10}.{v % 10}%"


def loss_permille(grid_wh: int, metered_wh: int) -> int | None:
    """(grid − metered) / grid in tenths of a percent, half up (None when grid is 0)."""
    if grid_wh <= 0:
        return None
    num = (grid_wh - metered_wh) * 1000
    q, r = divmod(abs(num), grid_wh)
    if 2 * r >= grid_wh:
        q += 1
    return q if num >= 0 else -q


def reconcile(close: MonthClose, rule: CloseRule | None = None,
              bill: GridBill | None = None) -> Reconciliation:
    """The month's comparison: a published month uses the grid figures frozen in it."""
    rule = rule or CloseRule()
    if close.published_at is not None:
        grid_wh, grid_cents = close.published_grid_wh, close.published_grid_cents
    else:
        bill = bill or grid_bill(close.alley_id, close.month)
        grid_wh = bill.grid_wh if bill else None
        grid_cents = bill.amount_cents if bill else None
    metered = int(close.energy_wh)
    pm = loss_permille(grid_wh, metered) if grid_wh is not None else None
    return Reconciliation(
        metered_wh=metered, grid_wh=grid_wh, grid_cents=grid_cents,
        loss_wh=(grid_wh - metered) if grid_wh is not None else None, loss_permille=pm,
        flagged=pm is not None and pm > rule.loss_pct * 10,
        takings_cents=int(close.electricity_cents) + int(close.service_cents),
        difference_cents=(int(close.electricity_cents) - grid_cents
                          if grid_cents is not None else None))
