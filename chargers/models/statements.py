"""Monthly close: the snapshot of each closed month per alley (`MonthClose`) and per
resident account (`Statement`), which ledger posting belongs to which month
(`PostingMonth`), the grid meter readings / bill staff enter for a month (`GridBill`)
and the reminders already sent (`Reminder`, one row per condition).

A closed month never changes: its rows are written once by the close. A posting is
assigned to a month when that month closes (see chargers.services.billing.monthly_close), so a
correction posted after a close lands in the next month still open.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class MonthClose(db.Model):
    """An alley's closed month (local calendar month `month` = "YYYY-MM"): its totals,
    frozen at the close; `daily` holds the per-day figures for the charts."""

    __tablename__ = "month_closes"
    __table_args__ = (UniqueConstraint("alley_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC of local 1st 00:00
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    energy_wh: Mapped[int] = mapped_column(BigInteger, default=0)  # metered by the piles
    electricity_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    service_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    topups_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustments_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    covered_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    waived_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    postings: Mapped[int] = mapped_column(Integer, default=0)
    # Residents' debts (negative balances) at the close, and debts written off in it.
    debts_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    writeoffs_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    occupancy_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    card_sales_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Received by WeChat Pay / Alipay (online top-ups − refunds to them) and their fees
    # (the alley's expense); cash received is top-ups − refunds − online.
    online_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    fees_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The ledger's hash chain head when the month closed (shown on the 公示).
    chain_head: Mapped[str | None] = mapped_column(String(64))
    chain_postings: Mapped[int | None] = mapped_column(BigInteger)
    daily: Mapped[list] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Publication (公示): the grid bill is copied in when staff publish.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_grid_wh: Mapped[int | None] = mapped_column(BigInteger)
    published_grid_cents: Mapped[int | None] = mapped_column(BigInteger)
    # The 公示's version: 1 when published, +1 for each correction (NoticeVersion).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class NoticeVersion(db.Model):
    """One version of a month's 公示, kept as it was shown: version 1 at publication,
    then each correction of the grid bill after it, with who, when and why. The month
    shows its latest; residents see that it was corrected and what it said before."""

    __tablename__ = "notice_versions"
    __table_args__ = (UniqueConstraint("close_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    close_id: Mapped[int] = mapped_column(ForeignKey("month_closes.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    grid_wh: Mapped[int | None] = mapped_column(BigInteger)
    grid_cents: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")


class Statement(db.Model):
    """A resident account's statement for a closed month (frozen at the close)."""

    @property
    def topups_cash_cents(self) -> int:
        return self.topups_cents - self.topups_wechat_cents - self.topups_alipay_cents

    @property
    def refunds_cash_cents(self) -> int:
        return self.refunds_cents - self.refunds_wechat_cents - self.refunds_alipay_cents

    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("resident_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    close_id: Mapped[int] = mapped_column(ForeignKey("month_closes.id"), index=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    opening_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    topups_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    charges_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # <= 0
    refunds_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # <= 0
    adjustments_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    writeoffs_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Of the top-ups and refunds, what went through WeChat Pay and Alipay (online top-ups,
    # refunds to the channel, their reversals); the rest is cash and the like.
    topups_wechat_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    topups_alipay_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunds_wechat_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunds_alipay_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    closing_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # [{"id", "ended_at" (ISO UTC), "pile", "port", "energy_wh", "amount_cents", "billing"}]
    sessions: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostingMonth(db.Model):
    """Which closed month a ledger posting was counted in (written once at the close)."""

    __tablename__ = "posting_months"

    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"), primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)


class GridBill(db.Model):
    """The alley's grid meter readings and/or bill for a month, entered by staff; the
    month's account compares `grid_wh` with the piles' metered energy."""

    __tablename__ = "grid_bills"
    __table_args__ = (UniqueConstraint("alley_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    reading_start_wh: Mapped[int | None] = mapped_column(BigInteger)
    reading_end_wh: Mapped[int | None] = mapped_column(BigInteger)
    grid_wh: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(255), default="")
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Reminder(db.Model):
    """A reminder sent once for one condition; `key` names the condition, e.g.
    `low:<account>:<topup posting id>` or `statement:<account>:2026-11`."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"),
                                                    index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReminderSettings(db.Model):
    """An alley's reminder rules (absent: the deployment's defaults)."""

    __tablename__ = "reminder_settings"

    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), primary_key=True)
    low_balance_cents: Mapped[int] = mapped_column(Integer)
    monthly_days: Mapped[int] = mapped_column(Integer)


class ResidentChannels(db.Model):
    """How a resident account hears its reminders and session messages: WeChat
    subscription messages, SMS to its phone and/or e-mail (none: recorded only), in
    which language, and whether at night."""

    __tablename__ = "resident_channels"

    resident_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"),
                                             primary_key=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    sms: Mapped[bool] = mapped_column(Boolean, default=False)
    # WeChat: the resident's openid under the alley's official account (from OAuth);
    # `wechat` turns subscription messages on. `night`: messages between 22:00 and
    # 07:00 local are welcome (else they wait for the morning; safety stops never wait).
    wechat_openid: Mapped[str] = mapped_column(String(64), default="", index=True)
    wechat: Mapped[bool] = mapped_column(Boolean, default=False)
    night: Mapped[bool] = mapped_column(Boolean, default=False)
    # The resident's language for messages ("zh", "en"); empty: the deployment's first.
    language: Mapped[str] = mapped_column(String(8), default="", server_default="")
