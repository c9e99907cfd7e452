"""Read-only views of billing for staff pages and CSV exports: sessions with their
amounts, ledger lines, an account's postings, an alley's ledger balances, today's
takings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select

from ...extensions import db
from ...models import (
    Alley,
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    MoneyAudit,
    Pile,
    Posting,
    ResidentAccount,
    User,
)
from ..devices import alleys


@dataclass(frozen=True)
class SessionFilter:
    """Which of an alley's sessions: ended on local dates `start`..`end` of the alley
    (inclusive; None = open), on `card` (None = any). Sessions belong to the day they
    ended, as in the monthly close; with a date, a session still charging is in no day."""

    start: date | None = None
    end: date | None = None
    card: str | None = None


def _sessions(alley: Alley, f: SessionFilter):
    stmt = (select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
            .where(Pile.alley_id == alley.id))
    tz = alleys.zone(alley)
    if f.start or f.end:  # finished sessions, as the close counts them
        stmt = stmt.where(ChargingSession.status.in_(("stopped", "timeout")))
    if f.start:
        stmt = stmt.where(ChargingSession.ended_at
                          >= datetime.combine(f.start, time.min, tzinfo=tz).astimezone(UTC))
    if f.end:
        stmt = stmt.where(ChargingSession.ended_at < datetime.combine(
            f.end + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC))
    if f.card:
        stmt = stmt.where(ChargingSession.card == f.card)
    return stmt


def alley_sessions(alley: Alley, f: SessionFilter = SessionFilter(), *, offset: int = 0,
                   limit: int = 100) -> list[ChargingSession]:
    """A page of the alley's sessions, newest first (settled ones carry amounts)."""
    return list(db.session.scalars(_sessions(alley, f).order_by(ChargingSession.id.desc())
                                   .offset(offset).limit(limit)))


@dataclass(frozen=True)
class SessionTotals:
    sessions: int
    energy_wh: float
    energy_cents: int
    service_cents: int
    amount_cents: int
    in_review: int = 0  # sessions on the review list: priced, not charged (no amount here)


# The billing states whose amount the ledger holds (ledger.BILLED).
BILLED = ("charged", "covered", "waived")


def session_totals(alley: Alley, f: SessionFilter = SessionFilter()) -> SessionTotals:
    """Count and kWh of the filtered sessions; amounts only of those the ledger
    charged (charged, covered, waived): a session on the review list is counted apart
    and adds nothing until staff assign it."""
    cs = _sessions(alley, f).subquery()
    billed = cs.c.billing.in_(BILLED)

    def amount(col):
        return func.coalesce(func.sum(case((billed, col), else_=0)), 0)

    row = db.session.execute(select(
        func.count(), func.coalesce(func.sum(cs.c.energy_wh), 0),
        amount(cs.c.energy_cents), amount(cs.c.service_cents), amount(cs.c.amount_cents),
        func.coalesce(func.sum(case((cs.c.billing == "review", 1), else_=0)), 0))).one()
    return SessionTotals(row[0], float(row[1]), int(row[2]), int(row[3]), int(row[4]),
                         int(row[5]))


def iter_alley_sessions(alley: Alley, f: SessionFilter = SessionFilter()
                        ) -> Iterator[ChargingSession]:
    """The filtered sessions of the alley, oldest first, streamed (for the CSV export)."""
    stmt = (_sessions(alley, f).order_by(ChargingSession.id)
            .execution_options(yield_per=1000))
    yield from db.session.scalars(stmt)


def iter_ledger(alley_id: int
                ) -> Iterator[tuple[Posting, LedgerEntry, LedgerAccount, str | None]]:
    """Every ledger line of the alley, in posting order (for the CSV export), with the
    kind of the resident account its session was charged to (None without one): the
    `covered` account's lines say whether a monthly card or the community bore them."""
    stmt = (select(Posting, LedgerEntry, LedgerAccount, ResidentAccount.kind)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .outerjoin(ChargingSession, ChargingSession.id == Posting.session_id)
            .outerjoin(ResidentAccount, ResidentAccount.id == ChargingSession.account_id)
            .where(Posting.alley_id == alley_id).order_by(Posting.id, LedgerEntry.id)
            .execution_options(yield_per=1000))
    yield from db.session.execute(stmt)


def account_kinds_of(alley: Alley) -> dict[int, str]:
    """Every resident account of the alley: id → kind (prepaid, monthly, exempt)."""
    return dict(db.session.execute(select(ResidentAccount.id, ResidentAccount.kind)
                                   .where(ResidentAccount.alley_id == alley.id)).all())


def ledger_balances(alley: Alley) -> list[LedgerAccount]:
    """The alley's own ledger accounts (takings, cash, covered, waived)."""
    return list(db.session.scalars(select(LedgerAccount).where(
        LedgerAccount.alley_id == alley.id, LedgerAccount.resident_id.is_(None))
        .order_by(LedgerAccount.code)))


def account_postings(acc: ResidentAccount, limit: int = 100) -> list[tuple[Posting, int]]:
    """The postings that moved a resident's balance, newest first, with the amount."""
    la = db.session.scalar(select(LedgerAccount).where(LedgerAccount.resident_id == acc.id))
    if la is None:
        return []
    return list(db.session.execute(
        select(Posting, LedgerEntry.amount_cents).join(LedgerEntry,
                                                       LedgerEntry.posting_id == Posting.id)
        .where(LedgerEntry.account_id == la.id).order_by(Posting.id.desc()).limit(limit)))


def audit_trail(alley: Alley, limit: int = 100) -> list[tuple[MoneyAudit, User | None]]:
    """Who did what with money in the alley, newest first."""
    return list(db.session.execute(
        select(MoneyAudit, User).outerjoin(User, User.id == MoneyAudit.user_id)
        .where(MoneyAudit.alley_id == alley.id).order_by(MoneyAudit.id.desc()).limit(limit)))


def takings_today(alley_list: Iterable[Alley], now: datetime) -> dict[int, int]:
    """Per alley id: today's income in fen (services/billing/income.py, the one
    definition: electricity and service takings by posting time in the alley's zone)."""
    from . import income

    return income.takings_today(alley_list, now)
