"""The append-only, double-entry ledger.

- A posting is a set of entries on ledger accounts that sums to zero (credits > 0,
  debits < 0; see chargers.models.billing) and carries an idempotency key unique in the
  database: posting the same key twice posts nothing the second time.
- Rows are never updated or deleted; a correction is a reversal posting (`reverse`).
- `LedgerAccount.balance_cents` is a cache of the sum of the account's entries, moved by
  an atomic `balance = balance + delta` in the posting's own transaction; `verify`
  recomputes every balance from the entries and reports any difference.

Functions here add and flush; they never commit (the caller owns the transaction).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    ChargingSession,
    LedgerAccount,
    LedgerChain,
    LedgerEntry,
    Posting,
    ResidentAccount,
    bulk,
)
from ..errors import Invalid


def code_for(alley_id: int, kind: str, resident_id: int | None = None) -> str:
    """The ledger account code: `resident:<id>` or `alley:<id>:<kind>`."""
    return f"resident:{resident_id}" if kind == "resident" else f"alley:{alley_id}:{kind}"


def account(alley_id: int, kind: str, resident_id: int | None = None) -> LedgerAccount:
    """The ledger account, made on first use (a concurrent maker wins harmlessly: the
    insert runs in a savepoint and the existing row is read back)."""
    code = code_for(alley_id, kind, resident_id)
    row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = LedgerAccount(code=code, kind=kind, alley_id=alley_id,
                                resident_id=resident_id, balance_cents=0)
            db.session.add(row)
    except IntegrityError:
        row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    return row


def resident_account(resident: ResidentAccount) -> LedgerAccount:
    """The ledger account holding a resident's prepaid balance."""
    return account(resident.alley_id, "resident", resident.id)


def balance(resident: ResidentAccount) -> int:
    """A resident's balance in fen (the cached sum of the entries)."""
    row = db.session.scalar(select(LedgerAccount.balance_cents)
                            .where(LedgerAccount.resident_id == resident.id))
    return int(row or 0)


def charge_key(session_id: int) -> str:
    """The idempotency key of a session's charge posting (built here only)."""
    return f"charge:{session_id}"


@dataclass
class Draft:
    """A posting to write: its lines are (ledger account or its id, fen)."""

    key: str
    kind: str
    alley_id: int
    lines: list[tuple[LedgerAccount | int, int]]
    session_id: int | None = None
    reverses_id: int | None = None
    method: str | None = None
    receipt: str | None = None
    reason: str = ""
    by: int | None = None


def _acc_id(acc: LedgerAccount | int) -> int:
    return acc if isinstance(acc, int) else acc.id


def posting_hash(prev: str | None, key: str, kind: str, alley_id: int,
                 session_id: int | None, reverses_id: int | None, created_at: datetime,
                 entries: Iterable[tuple[int, int]]) -> str:
    """SHA-256 of the previous posting's hash and this posting's fields and entries
    ((ledger account id, fen), sorted): change any of them and every later hash
    breaks."""
    lines = ",".join(f"{a}:{c}" for a, c in sorted(entries))
    text = "|".join([prev or "", key, kind, str(alley_id), str(session_id or ""),
                     str(reverses_id or ""), _utc_iso(created_at), lines])
    return hashlib.sha256(text.encode()).hexdigest()


def _utc_iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _lock_chain() -> LedgerChain:
    """The chain's head row, locked for this transaction (made on first use)."""
    stmt = select(LedgerChain).where(LedgerChain.id == 1)
    if bulk.is_postgres():
        stmt = stmt.with_for_update()
    head = db.session.scalar(stmt)
    if head is None:
        try:
            with db.session.begin_nested():
                head = LedgerChain(id=1, head=None, postings=0)
                db.session.add(head)
        except IntegrityError:
            head = db.session.scalar(stmt)
    return head


def debt(resident: ResidentAccount) -> int:
    """What a resident owes in fen (a negative balance; 0 when in credit). The next
    top-up clears it first: it is the same account."""
    return max(0, -balance(resident))


def post_many(drafts: Iterable[Draft], *, now: datetime) -> dict[str, int]:
    """Write balanced postings in a few multi-row statements: the one writer of money.
    Each draft must sum to zero (Invalid "ledger.unbalanced") and carry a key used
    once (in the batch: Invalid "ledger.duplicate_key"; in the database: the unique
    key raises IntegrityError, which callers treat as "already posted"). Entries of
    zero are left out; balance caches move by the postings' sums; each posting is
    chained to the previous one (`posting_hash`). Returns {key: posting id}."""
    drafts = list(drafts)
    if not drafts:
        return {}
    seen: set[str] = set()
    for d in drafts:
        d.lines = [(_acc_id(a), int(c)) for a, c in d.lines if int(c) != 0]
        if sum(c for _, c in d.lines) != 0:
            raise Invalid("ledger.unbalanced", key=d.key)
        if d.key in seen:
            raise Invalid("ledger.duplicate_key", key=d.key)
        seen.add(d.key)
    db.session.flush()  # pending ORM rows (accounts, sessions) before the bulk writes
    chain = _lock_chain()
    prev = chain.head
    rows = []
    for d in drafts:
        h = posting_hash(prev, d.key, d.kind, d.alley_id, d.session_id, d.reverses_id, now,
                         d.lines)
        rows.append({"key": d.key, "kind": d.kind, "alley_id": d.alley_id,
                     "session_id": d.session_id, "reverses_id": d.reverses_id,
                     "method": d.method, "receipt": d.receipt, "reason": d.reason,
                     "created_at": now, "created_by": d.by, "prev_hash": prev, "hash": h})
        prev = h
    ids = dict(bulk.insert_many(Posting.__table__, rows, returning=("key", "id")))
    bulk.insert_many(LedgerEntry.__table__, [
        {"posting_id": ids[d.key], "account_id": a, "amount_cents": c}
        for d in drafts for a, c in d.lines])
    deltas: dict[int, int] = defaultdict(int)
    for d in drafts:
        for a, c in d.lines:
            deltas[a] += c
    apply_deltas(deltas)
    chain.head, chain.postings = prev, (chain.postings or 0) + len(drafts)
    db.session.flush()
    return ids


def post(key: str, kind: str, alley_id: int, lines: Iterable[tuple[LedgerAccount, int]], *,
         now: datetime, by: int | None = None, session_id: int | None = None,
         reverses_id: int | None = None, method: str | None = None,
         receipt: str | None = None, reason: str = "") -> Posting:
    """Write one balanced posting (through `post_many`, with its checks) and return it.
    Raises Invalid("ledger.unbalanced") when the lines do not sum to zero; a key
    already posted raises IntegrityError (the savepoint is rolled back, so the
    caller's transaction stays usable)."""
    draft = Draft(key, kind, alley_id, list(lines), session_id=session_id,
                  reverses_id=reverses_id, method=method, receipt=receipt, reason=reason,
                  by=by)
    with db.session.begin_nested():
        ids = post_many([draft], now=now)
    return db.session.get(Posting, ids[key])


def apply_deltas(deltas: dict[int, int]) -> None:
    """Move balance caches by `deltas` {ledger account id: fen} atomically in SQL
    (`balance = balance + delta`, one multi-row statement)."""
    rows = [{"id": acc_id, "balance_cents": delta} for acc_id, delta in sorted(deltas.items())
            if delta]
    if not rows:
        return
    # Lock the rows in id order first (PostgreSQL): the multi-row UPDATE takes them in
    # any order, and two runs taking the same rows in different orders would deadlock.
    db.session.execute(select(LedgerAccount.id)
                       .where(LedgerAccount.id.in_([r["id"] for r in rows]))
                       .order_by(LedgerAccount.id).with_for_update())
    bulk.update_many(LedgerAccount.__table__, rows, set_=(), add=("balance_cents",))
    # Objects already loaded must re-read the cache the database just moved.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, LedgerAccount) and obj.id in deltas:
            db.session.expire(obj, ["balance_cents"])


def reverse(original: Posting, *, now: datetime, by: int | None, reason: str) -> Posting:
    """The correction of a posting: the same entries with opposite signs, once."""
    lines = [(e.account, -e.amount_cents) for e in original.entries]
    return post(f"reversal:{original.id}", "reversal", original.alley_id, lines, now=now,
                by=by, session_id=original.session_id, reverses_id=original.id,
                reason=reason)


def exists(key: str) -> bool:
    return db.session.scalar(select(Posting.id).where(Posting.key == key)) is not None


def verify() -> list[str]:
    """Every difference between the ledger and what it should be (empty: all agree):
    a posting that does not sum to zero, a cached balance that is not the sum of its
    entries, a session charged more than once or whose charge differs from its amount."""
    problems: list[str] = []
    unbalanced = db.session.execute(
        select(Posting.key, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
        .group_by(Posting.id, Posting.key)
        .having(func.sum(LedgerEntry.amount_cents) != 0)
    ).all()
    problems += [f"posting {key}: entries sum to {total}, not 0" for key, total in unbalanced]
    sums = dict(db.session.execute(
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents))
        .group_by(LedgerEntry.account_id)).all())
    for acc in db.session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)):
        expected = int(sums.get(acc.id) or 0)
        if int(acc.balance_cents) != expected:
            problems.append(f"account {acc.code}: balance {acc.balance_cents}, "
                            f"entries sum to {expected}")
    twice = db.session.execute(
        select(Posting.session_id, func.count())
        .where(Posting.kind == "charge", Posting.session_id.is_not(None))
        .group_by(Posting.session_id).having(func.count() > 1)).all()
    problems += [f"session {sid}: charged {n} times" for sid, n in twice]
    # A charge posting moves exactly the session's amount off the payer.
    charged = db.session.execute(
        select(ChargingSession.id, ChargingSession.amount_cents,
               func.sum(LedgerEntry.amount_cents))
        .join(Posting, Posting.session_id == ChargingSession.id)
        .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(Posting.kind == "charge", LedgerAccount.kind.in_(("resident", "covered",
                                                                  "waived")))
        .group_by(ChargingSession.id, ChargingSession.amount_cents)).all()
    for sid, amount, paid in charged:
        if -int(paid or 0) != int(amount or 0):
            problems.append(f"session {sid}: amount {amount}, charged {-int(paid or 0)}")
    return problems


def audit(action: str, alley_id: int | None, user_id: int | None, now: datetime,
          **data) -> None:
    """Record a money action (code + JSON data, who, when) in the money audit."""
    from ...models import MoneyAudit

    db.session.add(MoneyAudit(action=action, alley_id=alley_id, user_id=user_id, at=now,
                              data=data))
