"""Read-only views of billing for staff pages and CSV exports: sessions with their
amounts, ledger lines, an account's postings, an alley's ledger balances, today's
takings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, or_, select

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
    """Which of an alley's sessions: started on local dates `start`..`end` of the
    alley (inclusive; None = open), on `card` (None = any)."""

    start: date | None = None
    end: date | None = None
    card: str | None = None


def _sessions(alley: Alley, f: SessionFilter):
    stmt = (select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
            .where(Pile.alley_id == alley.id))
    tz = alleys.zone(alley)
    if f.start:
        stmt = stmt.where(ChargingSession.started_at
                          >= datetime.combine(f.start, time.min, tzinfo=tz).astimezone(UTC))
    if f.end:
        stmt = stmt.where(ChargingSession.started_at < datetime.combine(
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


def session_totals(alley: Alley, f: SessionFilter = SessionFilter()) -> SessionTotals:
    """Count and sums of the filtered sessions (amounts of the settled ones)."""
    cs = _sessions(alley, f).subquery()
    row = db.session.execute(select(
        func.count(), func.coalesce(func.sum(cs.c.energy_wh), 0),
        func.coalesce(func.sum(cs.c.energy_cents), 0),
        func.coalesce(func.sum(cs.c.service_cents), 0),
        func.coalesce(func.sum(cs.c.amount_cents), 0))).one()
    return SessionTotals(row[0], float(row[1]), int(row[2]), int(row[3]), int(row[4]))


def iter_alley_sessions(alley: Alley, f: SessionFilter = SessionFilter()
                        ) -> Iterator[ChargingSession]:
    """The filtered sessions of the alley, oldest first, streamed (for the CSV export)."""
    stmt = (_sessions(alley, f).order_by(ChargingSession.id)
            .execution_options(yield_per=1000))
    yield from db.session.scalars(stmt)


def iter_ledger(alley_id: int) -> Iterator[tuple[Posting, LedgerEntry, LedgerAccount]]:
    """Every ledger line of the alley, in posting order (for the CSV export)."""
    stmt = (select(Posting, LedgerEntry, LedgerAccount)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(Posting.alley_id == alley_id).order_by(Posting.id, LedgerEntry.id)
            .execution_options(yield_per=1000))
    yield from db.session.execute(stmt)


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
    """Per alley id: what the ledger credited to its electricity and service takings
    since midnight in the alley's zone (charges, less adjustments), in fen."""
    from ..devices.alleys import zone

    starts = {}
    for a in alley_list:
        tz = zone(a)
        starts[a.id] = datetime.combine(now.astimezone(tz).date(), time(), tz)
    if not starts:
        return {}
    rows = db.session.execute(
        select(LedgerAccount.alley_id, func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(Posting, Posting.id == LedgerEntry.posting_id)
        .where(LedgerAccount.kind.in_(("electricity", "service")),
               LedgerAccount.resident_id.is_(None),
               or_(*(((LedgerAccount.alley_id == aid) & (Posting.created_at >= start))
                     for aid, start in starts.items())))
        .group_by(LedgerAccount.alley_id))
    out = dict.fromkeys(starts, 0)
    out.update({aid: int(total) for aid, total in rows})
    return out
