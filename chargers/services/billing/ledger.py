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
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

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


def account_by_code(code: str, kind: str, alley_id: int) -> LedgerAccount:
    """A ledger account with a code of its own (a sold monthly card's `card:…`), made
    on first use like `account`."""
    row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = LedgerAccount(code=code, kind=kind, alley_id=alley_id, balance_cents=0)
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


def posting_hash(prev: str | None, p, entries: Iterable[tuple[int, int]]) -> str:
    """SHA-256 of the previous posting's hash, this posting's fields (`p`: a row or a
    Draft-like object with key, kind, alley_id, session_id, reverses_id, method,
    receipt, reason, created_at, created_by) and its entries ((ledger account id, fen),
    sorted): change any of them and every later hash breaks. JSON, so no field can
    run into the next."""
    fields = [prev or "", p.key, p.kind, p.alley_id, p.session_id, p.reverses_id,
              p.method, p.receipt, p.reason or "", _utc_iso(p.created_at), p.created_by,
              sorted([int(a), int(c)] for a, c in entries)]
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _utc_iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _lock_chain() -> LedgerChain:
    """The chain's head row, locked for this transaction (made on first use). It is
    written first (a no-op UPDATE): on PostgreSQL that locks the row, on SQLite it takes
    the database's write lock; either way the head is read only once no other writer
    can move it, so two writers never chain to the same previous posting."""
    touched = db.session.execute(
        update(LedgerChain).where(LedgerChain.id == 1)
        .values(postings=LedgerChain.postings)
        .execution_options(synchronize_session=False)).rowcount
    if not touched:
        try:
            with db.session.begin_nested():
                db.session.add(LedgerChain(id=1, head=None, postings=0))
        except IntegrityError:
            pass  # made by another writer meanwhile: lock it as above
        db.session.execute(update(LedgerChain).where(LedgerChain.id == 1)
                           .values(postings=LedgerChain.postings)
                           .execution_options(synchronize_session=False))
    return db.session.scalar(select(LedgerChain).where(LedgerChain.id == 1)
                             .execution_options(populate_existing=True))


def balance_after(resident_id: int, posting_id: int) -> int:
    """A resident's balance right after a posting (the sum of the entries up to it)."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.resident_id == resident_id,
               LedgerEntry.posting_id <= posting_id)) or 0)


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
        row = {"key": d.key, "kind": d.kind, "alley_id": d.alley_id,
               "session_id": d.session_id, "reverses_id": d.reverses_id,
               "method": d.method, "receipt": d.receipt, "reason": d.reason,
               "created_at": now, "created_by": d.by, "prev_hash": prev}
        row["hash"] = prev = posting_hash(prev, SimpleNamespace(**row), d.lines)
        rows.append(row)
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
    """Every difference between the ledger and what it should be (empty: all agree).
    Each check is a function of its own (`verify_*`), so others can be added beside
    them: postings balance and cached balances equal their entries; the hash chain is
    unbroken (nothing rewritten, inserted or deleted); each settled session has exactly
    one charge posting whose parts equal the session's columns; each month close equals
    the postings it counted; each top-up and refund has its audit record and each
    record its posting."""
    return (verify_balances() + verify_chain() + verify_sessions() + verify_closes()
            + verify_money_records())


def verify_balances() -> list[str]:
    """A posting that does not sum to zero; a cached balance that is not the sum of its
    entries."""
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
    return problems


def verify_chain() -> list[str]:
    """Walk the hash chain in posting order: each posting's hash is recomputed from its
    fields and entries, and names the one before it; the chain's head is the last
    one's. A posting changed (on both sides, balances adjusted too), inserted or
    deleted breaks it. Postings from before the chain (no hash) may only come first."""
    entries: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pid, acc_id, cents in db.session.execute(
            select(LedgerEntry.posting_id, LedgerEntry.account_id, LedgerEntry.amount_cents)):
        entries[pid].append((int(acc_id), int(cents)))
    problems: list[str] = []
    prev, chained, n = None, False, 0
    for p in db.session.execute(
            select(Posting.id, Posting.key, Posting.kind, Posting.alley_id,
                   Posting.session_id, Posting.reverses_id, Posting.method, Posting.receipt,
                   Posting.reason, Posting.created_at, Posting.created_by,
                   Posting.prev_hash, Posting.hash).order_by(Posting.id)):
        if p.hash is None:
            if chained:
                problems.append(f"posting {p.key}: outside the hash chain")
            continue
        chained, n = True, n + 1
        if p.prev_hash != prev:
            problems.append(f"posting {p.key}: chain broken before it (a posting was "
                            f"removed or inserted)")
        expected = posting_hash(p.prev_hash, p, entries.get(p.id, []))
        if expected != p.hash:
            problems.append(f"posting {p.key}: its fields or entries changed after posting")
        prev = p.hash
    head = db.session.get(LedgerChain, 1)
    if head is not None and (head.head != prev or int(head.postings or 0) != n):
        problems.append(f"chain head {head.head} ({head.postings} postings) is not the last "
                        f"posting's {prev} ({n})")
    return problems


def verify_sessions() -> list[str]:
    """Sessions ↔ charge postings: every settled session not in review has exactly one
    charge posting and every charge posting a settled session; its electricity,
    service and occupancy entries equal the session's columns, and its payers' debits
    the session's amount (the resident's part: amount − what the card or community
    covered)."""
    problems: list[str] = []
    cs = ChargingSession
    parts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[int, int] = defaultdict(int)
    for sid, n in db.session.execute(
            select(Posting.session_id, func.count()).where(Posting.kind == "charge")
            .group_by(Posting.session_id)):
        counts[sid] = int(n)
    for sid, kind, cents in db.session.execute(
            select(Posting.session_id, LedgerAccount.kind, func.sum(LedgerEntry.amount_cents))
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(Posting.kind == "charge")
            .group_by(Posting.session_id, LedgerAccount.kind)):
        parts[sid][kind] += int(cents or 0)
    sessions = db.session.execute(
        select(cs.id, cs.settled_at, cs.billing, cs.energy_cents, cs.service_cents,
               cs.occupancy_cents, cs.amount_cents, cs.covered_cents)
        .where((cs.settled_at.is_not(None)) | cs.id.in_(list(counts)))).all()
    for s in sessions:
        problems += _session_against_its_posting(s, counts.get(s.id, 0), parts.get(s.id, {}))
    for sid in set(counts) - {s.id for s in sessions}:
        problems.append(f"charge posting of session {sid}: no such session")
    return problems


def _session_against_its_posting(s, n: int, got: dict[str, int]) -> list[str]:
    """One session's row against its charge postings (`n` of them, their entries summed
    by account kind in `got`)."""
    if s.settled_at is None:
        return [f"session {s.id}: charged but marked unsettled"]
    if s.billing == "review":
        return [f"session {s.id}: in review but charged"] if n else []
    if n != 1:
        return [f"session {s.id}: {n} charge postings, not 1"]
    problems = []
    want = {"electricity": s.energy_cents or 0, "service": s.service_cents or 0,
            "occupancy": s.occupancy_cents or 0}
    for kind, cents in want.items():
        if got.get(kind, 0) != cents:
            problems.append(f"session {s.id}: {kind} {cents} on the session, "
                            f"{got.get(kind, 0)} in its charge posting")
    paid = -(got.get("resident", 0) + got.get("covered", 0) + got.get("waived", 0))
    if paid != (s.amount_cents or 0):
        problems.append(f"session {s.id}: amount {s.amount_cents}, charged {paid}")
    if s.billing == "charged" and s.covered_cents is not None and (
            -got.get("resident", 0) != (s.amount_cents or 0) - s.covered_cents):
        problems.append(f"session {s.id}: the resident's part is "
                        f"{-got.get('resident', 0)}, not amount − covered")
    return problems


def _close_sums() -> dict[tuple[int, str], dict[str, int]]:
    """(alley, month) → each month-close total recomputed from the postings counted in
    that month (PostingMonth), as monthly_close counts them."""
    from ...models import PostingMonth

    fields = {"electricity": ("electricity_cents", 1), "service": ("service_cents", 1),
              "occupancy": ("occupancy_cents", 1), "covered": ("covered_cents", -1),
              "waived": ("waived_cents", -1), "written_off": ("writeoffs_cents", -1),
              "card_sales": ("card_sales_cents", 1)}
    sums: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for alley_id, month, acc_kind, p_kind, cents in db.session.execute(
            select(PostingMonth.alley_id, PostingMonth.month, LedgerAccount.kind, Posting.kind,
                   func.sum(LedgerEntry.amount_cents))
            .join(Posting, Posting.id == PostingMonth.posting_id)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .group_by(PostingMonth.alley_id, PostingMonth.month, LedgerAccount.kind,
                      Posting.kind)):
        got = sums[(alley_id, month)]
        if acc_kind in fields:
            name, sign = fields[acc_kind]
            got[name] += sign * int(cents or 0)
        if acc_kind in ("pay_wechat", "pay_alipay") and p_kind != "fee":
            got["online_cents"] -= int(cents or 0)
        if acc_kind == "pay_fees":
            got["fees_cents"] -= int(cents or 0)
        if acc_kind == "resident" and p_kind == "topup":
            got["topups_cents"] += int(cents or 0)
        if acc_kind == "resident" and p_kind == "refund":
            got["refunds_cents"] -= int(cents or 0)
    # A reversal of a top-up or refund counts as less top-up or refund (monthly_close).
    reversed_ = aliased(Posting)
    for alley_id, month, r_kind, cents in db.session.execute(
            select(PostingMonth.alley_id, PostingMonth.month, reversed_.kind,
                   func.sum(LedgerEntry.amount_cents))
            .join(Posting, Posting.id == PostingMonth.posting_id)
            .join(reversed_, reversed_.id == Posting.reverses_id)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(Posting.kind == "reversal", LedgerAccount.kind == "resident",
                   reversed_.kind.in_(("topup", "refund")))
            .group_by(PostingMonth.alley_id, PostingMonth.month, reversed_.kind)):
        got = sums[(alley_id, month)]
        if r_kind == "topup":
            got["topups_cents"] += int(cents or 0)
        else:
            got["refunds_cents"] -= int(cents or 0)
    return sums


def verify_closes() -> list[str]:
    """Each month close ↔ the ledger: its totals recomputed from the postings counted
    in it, and its chain head a posting's hash."""
    from ...models import MonthClose, PostingMonth

    problems: list[str] = []
    sums = _close_sums()
    counted = dict(((a, m), int(n)) for a, m, n in db.session.execute(
        select(PostingMonth.alley_id, PostingMonth.month, func.count())
        .group_by(PostingMonth.alley_id, PostingMonth.month)))
    hashes = set(db.session.scalars(select(Posting.hash).where(Posting.hash.is_not(None))))
    for mc in db.session.scalars(select(MonthClose).order_by(MonthClose.alley_id,
                                                             MonthClose.month)):
        got = sums.get((mc.alley_id, mc.month), {})
        for name in ("electricity_cents", "service_cents", "occupancy_cents", "covered_cents",
                     "waived_cents", "writeoffs_cents", "topups_cents", "refunds_cents",
                     "card_sales_cents", "online_cents", "fees_cents"):
            if int(getattr(mc, name) or 0) != got.get(name, 0):
                problems.append(f"month {mc.month} of alley {mc.alley_id}: {name} "
                                f"{getattr(mc, name)}, its postings say {got.get(name, 0)}")
        if int(mc.postings or 0) != counted.get((mc.alley_id, mc.month), 0):
            problems.append(f"month {mc.month} of alley {mc.alley_id}: {mc.postings} postings,"
                            f" {counted.get((mc.alley_id, mc.month), 0)} counted")
        if mc.chain_head and mc.chain_head not in hashes:
            problems.append(f"month {mc.month} of alley {mc.alley_id}: chain head "
                            f"{mc.chain_head} is no posting's hash")
    return problems


def verify_money_records() -> list[str]:
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
