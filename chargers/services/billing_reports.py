"""Read-only views of billing for staff pages and CSV exports: sessions with their
amounts, ledger lines, an account's postings, an alley's ledger balances."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from ..extensions import db
from ..models import (
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


def alley_sessions(alley: Alley, *, limit: int | None = 200) -> list[ChargingSession]:
    """The alley's sessions, newest first (settled ones carry amounts)."""
    stmt = (select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
            .where(Pile.alley_id == alley.id).order_by(ChargingSession.id.desc()))
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def iter_alley_sessions(alley_id: int) -> Iterator[ChargingSession]:
    """Every session of the alley, oldest first, streamed (for the CSV export)."""
    stmt = (select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
            .where(Pile.alley_id == alley_id).order_by(ChargingSession.id)
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
