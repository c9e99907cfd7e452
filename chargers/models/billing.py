"""Billing: tariffs, resident accounts and their cards, the double-entry ledger, and
what settlement leaves for staff (review items, adjustments) plus the money audit.

Money is integer fen everywhere. Ledger sign rule: an entry's `amount_cents` is a
credit when positive and a debit when negative; the entries of one posting sum to zero,
and an account's balance is the plain sum of its entries (so a resident's prepaid
balance is positive, cash received shows as a debit, i.e. negative).
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
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..constants import AccountKind, AdjustmentStatus, ReviewStatus
from ..extensions import db
from .base import UTCDateTime, utcnow

# Service-fee schemes of a tariff.
SERVICE_SCHEMES = ("tier_hour", "kwh", "flat_hour", "none")
ACCOUNT_KINDS = tuple(AccountKind)
# Ledger account kinds: a resident's balance, and per alley the takings (electricity,
# service), the cash box, charges the community covers (exempt, monthly cards) and
# sessions waived by staff.
# `written_off`: debts staff gave up on, with a reason; `occupancy`: occupancy fees;
# `card_sales`: monthly cards sold (income). A sold card has a `covered` account of its
# own (`card:<sale id>`) that bears the sessions it covers.
# `pay_wechat` / `pay_alipay`: the alley's money held at WeChat Pay / Alipay (online
# top-ups in, refunds and the providers' fees out); `pay_fees`: the providers' fees,
# the alley's expense (posting kind `fee`).
LEDGER_KINDS = ("resident", "electricity", "service", "cash", "covered", "waived",
                "written_off", "occupancy", "card_sales", "pay_wechat", "pay_alipay",
                "pay_fees")
POSTING_KINDS = ("topup", "refund", "charge", "adjustment", "reversal", "writeoff",
                 "card_sale", "fee")
REVIEW_REASONS = ("no_card", "unknown_card", "other_alley")
REVIEW_STATUSES = tuple(ReviewStatus)
ADJUSTMENT_STATUSES = tuple(AdjustmentStatus)


class Tariff(db.Model):
    """One version of an alley's prices, in force from `effective_from` (UTC) until the
    next version's; a draft (`effective_from` None) is only previewed."""

    __tablename__ = "tariffs"
    __table_args__ = (UniqueConstraint("alley_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    effective_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    electricity_cents_per_kwh: Mapped[int] = mapped_column(Integer)
    service_scheme: Mapped[str] = mapped_column(String(16), default="none")
    # tier_hour: [{"max_w": 180, "cents_per_hour": 20}, ...] ascending by max_w.
    service_tiers: Mapped[list] = mapped_column(JSON, default=list)
    # kwh: fen per kWh; flat_hour: fen per hour; unused otherwise.
    service_cents: Mapped[int] = mapped_column(Integer, default=0)
    step_minutes: Mapped[int] = mapped_column(Integer, default=1)
    free_minutes: Mapped[int] = mapped_column(Integer, default=0)
    minimum_cents: Mapped[int] = mapped_column(Integer, default=0)
    cap_cents: Mapped[int | None] = mapped_column(Integer)
    full_float_minutes: Mapped[int | None] = mapped_column(Integer)
    # Electricity price to 0.001 fen (e.g. ¥0.5583/kWh = 55830); None: the whole-fen
    # price above × 1000. Time-of-use: [{"from": "08:00", "to": "21:00",
    # "millifen_per_kwh": 55830, "name": "peak"}, ...] covering the day (local time;
    # a window may pass midnight); None: one price all day.
    electricity_millifen_per_kwh: Mapped[int | None] = mapped_column(Integer)
    tou_windows: Mapped[list | None] = mapped_column(JSON)
    # A regulator's cap on the service fee alone (per kWh in milli-fen, per hour in
    # fen), apart from the session cap.
    service_cap_millifen_per_kwh: Mapped[int | None] = mapped_column(Integer)
    service_cap_cents_per_hour: Mapped[int | None] = mapped_column(Integer)
    # Occupancy fee (占位费): per hour plugged in after full + grace minutes.
    occupancy_cents_per_hour: Mapped[int | None] = mapped_column(Integer)
    occupancy_grace_minutes: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ResidentAccount(db.Model):
    """A household's account in one alley: prepaid balance, monthly card or exempt."""

    __tablename__ = "resident_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="prepaid")
    household: Mapped[str] = mapped_column(String(64), default="")  # door number
    name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    # Monthly card: valid [monthly_from, monthly_until); hours None = unlimited.
    monthly_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    monthly_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    monthly_hours: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cards: Mapped[list[AccountCard]] = relationship(
        back_populates="account", order_by="AccountCard.card", cascade="all, delete-orphan",
        lazy="selectin")
    alley = relationship("Alley")


class AccountCard(db.Model):
    """A card (or account number) a pile sends as `card`; unique within an alley."""

    __tablename__ = "account_cards"
    __table_args__ = (UniqueConstraint("alley_id", "card"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    card: Mapped[str] = mapped_column(String(64), index=True)

    account: Mapped[ResidentAccount] = relationship(back_populates="cards")


class LedgerAccount(db.Model):
    """An account of the double-entry ledger. `balance_cents` is a cache of the sum of
    its entries, kept in the posting's transaction; `billing verify` recomputes it."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # e.g. "resident:12", "alley:3:cash"
    kind: Mapped[str] = mapped_column(String(16))
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"),
                                                    unique=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class Posting(db.Model):
    """One balanced set of entries, written once (append-only). `key` is its
    idempotency key (e.g. `charge:<session id>`), unique in the database."""

    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("charging_sessions.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    method: Mapped[str | None] = mapped_column(String(16))  # top-up / refund: cash, wechat, ...
    receipt: Mapped[str | None] = mapped_column(String(64))  # paper receipt number
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The hash chain (chargers.services.billing.ledger.posting_hash): the previous
    # posting's hash and this one's, over its fields and entries.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    entries: Mapped[list[LedgerEntry]] = relationship(back_populates="posting",
                                                      lazy="selectin")


class CardSale(db.Model):
    """A monthly card sold: its price (a posting: cash in, `card_sales` income), period
    and hours, and the ledger account (kind `covered`) the sessions it covers are booked
    against."""

    __tablename__ = "card_sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    period_from: Mapped[datetime] = mapped_column(UTCDateTime)
    period_until: Mapped[datetime] = mapped_column(UTCDateTime)
    hours: Mapped[int | None] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerChain(db.Model):
    """One row (id 1): the hash of the newest posting and how many are chained. Every
    posting writer locks it, so the chain has one order."""

    __tablename__ = "ledger_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    head: Mapped[str | None] = mapped_column(String(64))
    postings: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class LedgerEntry(db.Model):
    """One line of a posting: a credit (>0) or debit (<0) on one account."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    posting: Mapped[Posting] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()


class ReviewItem(db.Model):
    """A finished session settlement could not charge (no card, unknown card, a card
    of another alley): staff assign it to an account or waive it, with a reason."""

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("charging_sessions.id"), unique=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Adjustment(db.Model):
    """A change to a settled session (a late stop, more energy) waiting for staff:
    approved, it posts `delta_cents` more (or less, if negative); never a silent rebill."""

    __tablename__ = "adjustments"
    __table_args__ = (UniqueConstraint("session_id", "cause"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("charging_sessions.id"), index=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    cause: Mapped[str] = mapped_column(String(64))  # e.g. "late_stop:<energy_wh>"
    delta_cents: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))


class MoneyAudit(db.Model):
    """Who did what with money, when: an action code and JSON data (never a sentence)."""

    __tablename__ = "money_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int | None] = mapped_column(ForeignKey("alleys.id"), index=True)
    action: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class IdempotencyKey(db.Model):
    """A client's request key (API `Idempotency-Key` header, a form's hidden field):
    claimed in the transaction of the money movement it asked for, then holding the
    answer given, which a repeat of the key gets again (posting nothing)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))  # whose key: `user:<id>`
    key: Mapped[str] = mapped_column(String(128))
    request: Mapped[str] = mapped_column(String(200))  # `POST /path`: a key is for one call
    status: Mapped[int | None] = mapped_column(Integer)  # None: answer not recorded yet
    body: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# The ledger is append-only in the database itself: an UPDATE or DELETE of a posting or
# an entry is refused by a trigger (migration u14_ledger01; tables made by create_all,
# as in tests, get the same triggers here). A correction is a reversal posting.
APPEND_ONLY_TABLES = ("postings", "ledger_entries")


def append_only_sql(dialect: str, table: str) -> list[str]:
    """The statements that make `table` refuse UPDATE and DELETE (and TRUNCATE on
    PostgreSQL) on this dialect."""
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION chargers_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME "
            "|| ' is append-only (' || TG_OP || ' refused)', ERRCODE = 'restrict_violation'; "
            "END $$",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION chargers_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION chargers_append_only()",
        ]
    if dialect == "sqlite":
        return [f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only ({op} refused)'); END"
                for op in ("UPDATE", "DELETE")]
    return []


def _make_append_only(table, connection, **kw) -> None:
    for statement in append_only_sql(connection.dialect.name, table.name):
        connection.exec_driver_sql(statement)


for _table in (Posting.__table__, LedgerEntry.__table__):
    event.listen(_table, "after_create", _make_append_only)
