"""Online payments (chargers.services.payments): top-up orders sent to WeChat Pay or
Alipay, refunds of them to the original channel, every provider notification's
outcome, the providers' daily bills and the mismatches found in them.

Money is integer fen. An order's money reaches the ledger once, by the posting keyed
`paytopup:<order_no>`; a refund by `payrefund:<refund_no>`; a provider's fee by
`payfee:<provider>:<order_no>`. No key material is stored here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime


class PaymentOrder(db.Model):
    """A resident's online top-up: our order number (the provider's out_trade_no), the
    amount, the channel and its state (chargers.constants.OrderState)."""

    __tablename__ = "payment_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(8))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The provider's transaction id (WeChat transaction_id, Alipay trade_no).
    provider_txn: Mapped[str] = mapped_column(String(64), default="")
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # How the payment was learnt: "notify" or "query".
    paid_by: Mapped[str] = mapped_column(String(8), default="")


class PaymentRefund(db.Model):
    """A refund of (part of) an order to its channel (chargers.constants.RefundState),
    asked by staff and tracked until the provider confirms it."""

    __tablename__ = "payment_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payment_orders.id"), index=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_refund_id: Mapped[str] = mapped_column(String(64), default="")
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    reversal_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))


class PaymentNotice(db.Model):
    """One notification from a provider and what became of it
    (chargers.constants.NoticeOutcome): counted in /metrics, listed for staff."""

    __tablename__ = "payment_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    order_no: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    detail: Mapped[str] = mapped_column(String(200), default="")


class PaymentBill(db.Model):
    """A provider's bill of one day (the provider's date, Asia/Shanghai), fetched and
    matched by `payments-reconcile`."""

    __tablename__ = "payment_bills"
    __table_args__ = (UniqueConstraint("provider", "bill_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(8))
    bill_date: Mapped[str] = mapped_column(String(10))
    lines: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    mismatches: Mapped[int] = mapped_column(Integer, default=0)
    fees_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentMismatch(db.Model):
    """A reconciliation finding on the staff review list
    (chargers.constants.MismatchKind, MismatchStatus), with the provider's line."""

    __tablename__ = "payment_mismatches"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    provider: Mapped[str] = mapped_column(String(8))
    bill_date: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    alley_id: Mapped[int | None] = mapped_column(ForeignKey("alleys.id"), index=True)
    order_no: Mapped[str] = mapped_column(String(64), default="")
    ours_cents: Mapped[int | None] = mapped_column(BigInteger)
    theirs_cents: Mapped[int | None] = mapped_column(BigInteger)
    line: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
