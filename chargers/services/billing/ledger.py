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

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import ChargingSession, LedgerAccount, LedgerEntry, Posting, ResidentAccount, bulk
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


def lock(*accounts: LedgerAccount) -> None:
    """Hold these ledger accounts' rows (SELECT … FOR UPDATE on PostgreSQL) until the
    transaction ends, always in id order (every locker takes them in the same order, so
    two never deadlock). A money movement that checks a balance locks first, then reads
    the balance, then posts: no other movement can spend it in between."""
    ids = sorted({a.id for a in accounts if a is not None})
    if not ids:
        return
    db.session.flush()
    db.session.execute(select(LedgerAccount.id).where(LedgerAccount.id.in_(ids))
                       .order_by(LedgerAccount.id).with_for_update())
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, LedgerAccount) and obj.id in ids:
            db.session.expire(obj, ["balance_cents"])


def balance(resident: ResidentAccount) -> int:
    """A resident's balance in fen (the cached sum of the entries)."""
    row = db.session.scalar(select(LedgerAccount.balance_cents)
                            .where(LedgerAccount.resident_id == resident.id))
    return int(row or 0)


def post(key: str, kind: str, alley_id: int, lines: Iterable[tuple[LedgerAccount, int]], *,
         now: datetime, by: int | None = None, session_id: int | None = None,
         reverses_id: int | None = None, method: str | None = None,
         receipt: str | None = None, reason: str = "",
         apply_balances: bool = True) -> Posting:
    """Write one balanced posting. Raises Invalid("ledger.unbalanced") when the lines do
    not sum to zero; the unique `key` makes a second posting of it fail in the
    database (IntegrityError), which callers treat as "already posted".

    `apply_balances=False` leaves the balance caches to the caller (settlement moves
    them once per batch with `apply_deltas`)."""
    lines = [(acc, int(cents)) for acc, cents in lines if int(cents) != 0]
    if sum(c for _, c in lines) != 0:
        raise Invalid("ledger.unbalanced", key=key)
    p = Posting(key=key, kind=kind, alley_id=alley_id, session_id=session_id,
                reverses_id=reverses_id, method=method, receipt=receipt, reason=reason,
                created_at=now, created_by=by)
    p.entries = [LedgerEntry(account=acc, amount_cents=c) for acc, c in lines]
    db.session.add(p)
    if apply_balances:
        deltas: dict[int, int] = defaultdict(int)
        db.session.flush()
        for acc, c in lines:
            deltas[acc.id] += c
        apply_deltas(deltas)
    return p


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
    problems += _sessions_without_their_posting()
    problems += _money_without_its_record()
    return problems


# A settled session billed one of these has exactly one charge posting (`charge:<id>`,
# possibly with no entries when it cost nothing); any other session has none.
BILLED = ("charged", "covered", "waived")


def _sessions_without_their_posting() -> list[str]:
    cs = ChargingSession
    postings: dict[int, list[str]] = defaultdict(list)
    for sid, key in db.session.execute(select(Posting.session_id, Posting.key).where(
            Posting.kind == "charge", Posting.session_id.is_not(None))):
        postings[sid].append(key)
    problems = []
    for sid, billing in db.session.execute(select(cs.id, cs.billing).where(
            cs.billing.in_(BILLED)).order_by(cs.id)):
        keys = postings.pop(sid, [])
        if keys != [f"charge:{sid}"]:
            problems.append(f"session {sid}: billed {billing}, charge postings {keys or 'none'}")
    for sid, keys in sorted(postings.items()):
        problems.append(f"session {sid}: not billed, yet charge postings {keys}")
    return problems


def _money_without_its_record() -> list[str]:
    """Every top-up or refund posting has its record in the money audit (the
    `money.topup` / `money.refund` entry: account, amount, time) and vice versa."""
    from collections import Counter

    from ...models import MoneyAudit

    def moment(at: datetime) -> str:
        return at.replace(tzinfo=None).isoformat(timespec="seconds") if at else ""

    posted: Counter = Counter()
    for kind, resident_id, cents, at in db.session.execute(
            select(Posting.kind, LedgerAccount.resident_id, LedgerEntry.amount_cents,
                   Posting.created_at)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(Posting.kind.in_(("topup", "refund")), LedgerAccount.kind == "resident")):
        posted[(kind, resident_id, abs(int(cents)), moment(at))] += 1
    recorded: Counter = Counter()
    for action, data, at in db.session.execute(
            select(MoneyAudit.action, MoneyAudit.data, MoneyAudit.at)
            .where(MoneyAudit.action.in_(("money.topup", "money.refund")))):
        data = data or {}
        recorded[(action.removeprefix("money."), data.get("account"),
                  abs(int(data.get("amount_cents") or 0)), moment(at))] += 1
    problems = []
    for (kind, acc, cents, at), n in sorted((posted - recorded).items(), key=str):
        problems.append(f"{kind} of {cents} to account {acc} at {at}: posted, no record ({n})")
    for (kind, acc, cents, at), n in sorted((recorded - posted).items(), key=str):
        problems.append(f"{kind} of {cents} to account {acc} at {at}: recorded, no posting ({n})")
    return problems


def audit(action: str, alley_id: int | None, user_id: int | None, now: datetime,
          **data) -> None:
    """Record a money action (code + JSON data, who, when) in the money audit."""
    from ...models import MoneyAudit

    db.session.add(MoneyAudit(action=action, alley_id=alley_id, user_id=user_id, at=now,
                              data=data))
