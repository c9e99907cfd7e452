"""Settlement: price each finished, unbilled session and post it exactly once.

Exactly once, on SQLite and PostgreSQL, with runs that overlap or die:
1. A batch is *claimed* by one statement, the first of its transaction:
   `UPDATE charging_sessions SET settled_at = now WHERE id IN (<the next N finished
   sessions with settled_at NULL>) AND settled_at IS NULL RETURNING id`. On PostgreSQL
   the inner SELECT takes `FOR UPDATE SKIP LOCKED`, so an overlapping run takes other
   rows; a row it still meets waits for the first run's commit and then fails the
   `settled_at IS NULL` test. SQLite lets one writer at a time.
2. In the same transaction each claimed session is priced (chargers.services.billing.pricing),
   its amounts are written and one charge posting with the unique key
   `charge:<session id>` is added; the batch commits once. A run killed mid-batch
   commits nothing: the claim is undone with the rest and the next run settles them.

A session with no card, an unknown card or a card of another alley is priced and goes
to the review list (staff assign or waive it). A prepaid session is charged at most the
balance (service cut first). Exempt accounts and monthly cards within their period and
hours are *covered* (the community or the card pays; the amount is still shown).

Events after settlement (a late stop with more energy) make an Adjustment for staff to
approve (`on_late_stop`, called by the ingest, no commit); the session's amounts never
change. Functions that commit say so.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    AccountCard,
    Adjustment,
    Alley,
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    MeterSample,
    Pile,
    Posting,
    ResidentAccount,
    ReviewItem,
    Tariff,
    User,
    bulk,
)
from ...settings import SettleRule  # re-exported: built by the doors
from .. import scope
from ..errors import Invalid
from . import ledger, pricing

FINISHED = ("stopped", "timeout")


def claim(now: datetime, n: int, after: int = 0) -> list[int]:
    """Mark up to `n` finished unsettled sessions with ids above `after` as ours (see
    the module docstring)."""
    cs = ChargingSession
    todo = (select(cs.id).where(cs.id > after, cs.settled_at.is_(None), cs.status.in_(FINISHED),
                                cs.started_at.is_not(None), cs.ended_at.is_not(None))
            .order_by(cs.id).limit(n))
    if db.session.get_bind().dialect.name == "postgresql":
        todo = todo.with_for_update(skip_locked=True)
    stmt = (update(cs).where(cs.id.in_(todo.scalar_subquery()), cs.settled_at.is_(None))
            .values(settled_at=now).returning(cs.id)
            .execution_options(synchronize_session=False))
    return sorted(db.session.scalars(stmt).all())


def settle(now: datetime, rule: SettleRule | None = None) -> Counter:
    """Settle every finished unsettled session, batch by batch (commits each batch).
    Returns counts by outcome (charged, covered, review, free)."""
    rule = rule or SettleRule()
    counts: Counter = Counter()
    batches = 0
    after = 0
    while rule.max_batches is None or batches < rule.max_batches:
        # Each batch starts above the last one: when PostgreSQL's statistics still say
        # "all unsettled" (a large backlog) it scans by id from the start, and every
        # batch would walk over all the rows already settled (quadratic in the backlog).
        # Rows below that another run held are that run's, or the next run's.
        n, after = settle_batch(now, rule.batch_size, counts, after)
        batches += 1
        if n < rule.batch_size:
            break
    return counts


class _Book:
    """Per-batch caches: tariffs by alley, alley ledger accounts, balances."""

    def __init__(self):
        self.tariffs: dict[int, list[pricing.TariffSpec]] = {}
        self.accounts: dict[tuple[int, str], LedgerAccount] = {}
        self.deltas: dict[int, int] = defaultdict(int)

    def tariff(self, alley: Alley, at: datetime) -> pricing.TariffSpec:
        if alley.id not in self.tariffs:
            rows = db.session.scalars(select(Tariff).where(Tariff.alley_id == alley.id,
                                                           Tariff.effective_from.is_not(None)))
            self.tariffs[alley.id] = [pricing.TariffSpec.from_row(t) for t in rows]
        versions = self.tariffs[alley.id]
        chosen = pricing.tariff_at(versions, at)
        if chosen is None and versions:  # before the first version: the first one
            chosen = min(versions, key=lambda t: t.effective_from)
        return chosen or pricing.TariffSpec(alley.tariff_cents_per_kwh)

    def account(self, alley_id: int, kind: str) -> LedgerAccount:
        key = (alley_id, kind)
        if key not in self.accounts:
            self.accounts[key] = ledger.account(alley_id, kind)
        return self.accounts[key]


def _monthly_covers(acc: ResidentAccount, s, pending: list[dict] = ()) -> bool:
    """A monthly card covers a session started in its period, within its hours
    (counting sessions already covered, also those of this batch in `pending`)."""
    if acc.monthly_from is None or acc.monthly_until is None:
        return False
    if not acc.monthly_from <= s.started_at < acc.monthly_until:
        return False
    if acc.monthly_hours is None:
        return True
    used = monthly_used_seconds(acc, exclude=s.id)
    used += sum(v["bill"]["duration_s"] for v in pending
                if v["account_id"] == acc.id and v["billing"] == "covered")
    mine = (s.ended_at - s.started_at).total_seconds()
    return used + mine <= acc.monthly_hours * 3600


def monthly_used_seconds(acc: ResidentAccount, exclude: int | None = None) -> float:
    """Seconds of charging the monthly card has covered in its current period."""
    rows = db.session.execute(
        select(ChargingSession.started_at, ChargingSession.ended_at)
        .where(ChargingSession.account_id == acc.id, ChargingSession.billing == "covered",
               ChargingSession.started_at >= acc.monthly_from,
               ChargingSession.started_at < acc.monthly_until,
               ChargingSession.id != (exclude or -1))).all()
    return sum((e - s).total_seconds() for s, e in rows if s and e)


def settle_batch(now: datetime, n: int, counts: Counter | None = None,
                 after: int = 0) -> tuple[int, int]:
    """Claim (ids above `after`), price and post up to `n` sessions in one transaction
    (commits). Returns how many were claimed and the highest id claimed (or `after`).

    The writes are a few multi-row statements per batch (chargers.models.bulk, not the
    ORM's unit of work): the UPDATE of the sessions, the INSERT of the postings (ids
    returned with their keys), of their entries, of review items, and the balance
    moves; on PostgreSQL each is one statement."""
    counts = counts if counts is not None else Counter()
    ids = claim(now, n, after)
    if not ids:
        db.session.commit()
        return 0, after
    cs = ChargingSession
    rows = db.session.execute(
        select(cs.id, cs.pile_id, cs.card, cs.started_at, cs.ended_at, cs.energy_wh,
               cs.stop_reason).where(cs.id.in_(ids)).order_by(cs.id)).all()
    piles = {p.id: p for p in db.session.scalars(
        select(Pile).where(Pile.id.in_({r.pile_id for r in rows})))}
    alleys = {a.id: a for a in db.session.scalars(
        select(Alley).where(Alley.id.in_({p.alley_id for p in piles.values()})))}
    samples: dict[int, list[pricing.Sample]] = defaultdict(list)
    for sid, ts, w, e in db.session.execute(
            select(MeterSample.session_id, MeterSample.ts, MeterSample.power_w,
                   MeterSample.energy_wh).where(MeterSample.session_id.in_(ids))):
        samples[sid].append(pricing.Sample(ts, w, e))
    cards = {r.card for r in rows if r.card}
    holders: dict[tuple[int, str], int] = {}
    card_alleys: dict[str, set[int]] = defaultdict(set)
    if cards:
        for alley_id, card, acc_id in db.session.execute(
                select(AccountCard.alley_id, AccountCard.card, AccountCard.account_id)
                .where(AccountCard.card.in_(cards))):
            holders[(alley_id, card)] = acc_id
            card_alleys[card].add(alley_id)
    # Plain rows, not ORM objects: a batch reads hundreds of accounts only to look.
    ra = ResidentAccount
    residents = {a.id: a for a in db.session.execute(
        select(ra.id, ra.alley_id, ra.kind, ra.monthly_from, ra.monthly_until,
               ra.monthly_hours).where(ra.id.in_(set(holders.values()))))}
    # Lock the payers' balances (PostgreSQL; ordered to avoid deadlocks) so two runs
    # never spend the same balance twice.
    balances: dict[int, LedgerAccount] = {}
    if residents:
        la = LedgerAccount
        for row in db.session.execute(
                select(la.id, la.resident_id, la.balance_cents)
                .where(la.resident_id.in_(residents)).order_by(la.id).with_for_update()):
            balances[row.resident_id] = row
    book = _Book()
    # Every ledger account the batch may touch exists (with an id) before the loop.
    for alley_id in {p.alley_id for p in piles.values()}:
        for kind in ("electricity", "service", "covered"):
            book.account(alley_id, kind)
    for acc in residents.values():
        if acc.id not in balances:
            balances[acc.id] = ledger.resident_account(acc)
    db.session.flush()

    updates: list[dict] = []
    postings: list[dict] = []
    lines: list[list[tuple[int, int]]] = []
    reviews: list[dict] = []
    for r in rows:
        alley = alleys[piles[r.pile_id].alley_id]
        spec = book.tariff(alley, r.started_at)
        usage = pricing.Usage(r.started_at, r.ended_at, r.energy_wh or 0,
                              samples.get(r.id, []), r.stop_reason)
        priced = pricing.price(spec, usage)
        values = {"id": r.id, "billing": None, "account_id": None}
        review = None
        acc = None
        if not r.card:
            review = "no_card"
        elif (alley.id, r.card) in holders:
            acc = residents[holders[(alley.id, r.card)]]
        else:
            review = "other_alley" if card_alleys.get(r.card) else "unknown_card"
        payer = None
        if acc is not None:
            if acc.kind == "exempt" or (acc.kind == "monthly"
                                        and _monthly_covers(acc, r, pending=updates)):
                payer, values["billing"] = book.account(alley.id, "covered"), "covered"
            else:
                payer = balances[acc.id]
                available = int(payer.balance_cents) + book.deltas[payer.id]
                priced = pricing.limit_to(priced, available)
                values["billing"] = "charged"
            values["account_id"] = acc.id
        _write(values, priced)
        updates.append(values)
        if review:
            values["billing"] = "review"
            reviews.append({"session_id": r.id, "alley_id": alley.id, "reason": review,
                            "status": "open", "note": "", "created_at": now})
            counts["review"] += 1
            continue
        entry = [(payer.id, -priced.amount_cents),
                 (book.account(alley.id, "electricity").id, priced.energy_cents),
                 (book.account(alley.id, "service").id, priced.service_cents)]
        for acc_id, c in entry:
            book.deltas[acc_id] += c
        postings.append({"key": f"charge:{r.id}", "kind": "charge", "alley_id": alley.id,
                         "session_id": r.id, "reverses_id": None, "method": None,
                         "receipt": None, "reason": "", "created_at": now, "created_by": None})
        lines.append(entry)
        counts["free" if priced.amount_cents == 0 else values["billing"]] += 1

    bulk.update_many(cs.__table__, updates, _WRITTEN)
    bulk.insert_many(ReviewItem.__table__, reviews)
    # The postings' ids come back with their keys (in no particular order).
    ids_by_key = dict(bulk.insert_many(Posting.__table__, postings, returning=("key", "id")))
    bulk.insert_many(LedgerEntry.__table__, [
        {"posting_id": ids_by_key[p["key"]], "account_id": acc_id, "amount_cents": c}
        for p, entry in zip(postings, lines, strict=True) for acc_id, c in entry if c != 0])
    ledger.apply_deltas(book.deltas)
    db.session.commit()
    return len(ids), ids[-1]


# Session columns settlement writes (besides settled_at, set by the claim).
_WRITTEN = ("energy_cents", "service_cents", "amount_cents", "tariff_id",
            "tariff_cents_per_kwh", "tier", "tier_evidence", "bill", "receipt_token",
            "billing", "account_id")


def _write(values: dict, priced: pricing.Priced) -> None:
    """The settled figures of one session into `values` (by column name)."""
    values["energy_cents"] = priced.energy_cents
    values["service_cents"] = priced.service_cents
    values["amount_cents"] = priced.amount_cents
    values["tariff_id"] = priced.tariff_id
    values["tariff_cents_per_kwh"] = priced.electricity_cents_per_kwh
    values["tier"] = None if priced.tier is None else str(priced.tier)
    values["tier_evidence"] = priced.tier_evidence
    values["bill"] = {k: v for k, v in priced.as_dict().items() if k != "tier_evidence"}
    values["receipt_token"] = secrets.token_urlsafe(16)


# --- after settlement ------------------------------------------------------------

def _reprice(s: ChargingSession, ended_at: datetime, energy_wh: float,
             stop_reason: str | None) -> pricing.Priced:
    pile = db.session.get(Pile, s.pile_id)
    tariff = db.session.get(Tariff, s.tariff_id) if s.tariff_id else None
    spec = (pricing.TariffSpec.from_row(tariff) if tariff
            else pricing.TariffSpec(pile.alley.tariff_cents_per_kwh))
    smp = [pricing.Sample(ts, w, e) for ts, w, e in db.session.execute(
        select(MeterSample.ts, MeterSample.power_w, MeterSample.energy_wh)
        .where(MeterSample.session_id == s.id))]
    return pricing.price(spec, pricing.Usage(s.started_at, ended_at, energy_wh, smp,
                                             stop_reason))


def on_late_stop(s: ChargingSession, ended_at: datetime, energy_wh: float,
                 stop_reason: str | None, now: datetime,
                 cause: str = "late_stop") -> Adjustment | None:
    """News for a session already settled (a late stop, more energy): the difference
    as a pending Adjustment, never a silent rebill. While one is pending for the session
    it is brought up to date rather than another added. Adds, does not commit."""
    ended_at = max(ended_at, s.started_at)
    new = _reprice(s, ended_at, energy_wh, stop_reason)
    de = new.energy_cents - (s.energy_cents or 0)
    ds = new.service_cents - (s.service_cents or 0)
    if de == 0 and ds == 0 and energy_wh == s.energy_wh:
        return None
    data = {"energy_delta_cents": de, "service_delta_cents": ds,
            "energy_wh": [s.energy_wh, energy_wh],
            "ended_at": [s.ended_at.isoformat() if s.ended_at else None, ended_at.isoformat()],
            "stop_reason": stop_reason}
    adj = db.session.scalar(select(Adjustment).where(Adjustment.session_id == s.id,
                                                     Adjustment.status == "pending"))
    cause_text = f"{cause}:{ended_at.isoformat()}"[:64]
    if db.session.scalar(select(Adjustment.id).where(
            Adjustment.session_id == s.id, Adjustment.cause == cause_text,
            Adjustment.status != "pending")) is not None:
        return None  # the same news again, already decided by staff
    if adj is None:
        pile = db.session.get(Pile, s.pile_id)
        adj = Adjustment(session_id=s.id, alley_id=pile.alley_id, created_at=now,
                         cause=cause_text, delta_cents=de + ds, data=data)
        db.session.add(adj)
    else:
        adj.cause, adj.delta_cents, adj.data = cause_text, de + ds, data
    return adj


def on_late_meter(s: ChargingSession, at: datetime, energy_wh: float,
                  now: datetime) -> Adjustment | None:
    """A meter reading with more energy for a session already settled. Adds."""
    if energy_wh <= (s.energy_wh or 0):
        return None
    return on_late_stop(s, max(at, s.ended_at or at), energy_wh, s.stop_reason, now,
                        cause="late_meter")


def _charge_posting(session_id: int) -> Posting | None:
    return db.session.scalar(select(Posting).where(Posting.key == f"charge:{session_id}"))


def _payer_of(s: ChargingSession, alley_id: int) -> LedgerAccount:
    """The ledger account that paid a settled session (also when its charge was 0 and
    the posting has no entries)."""
    if s.billing == "charged" and s.account_id:
        return ledger.account(alley_id, "resident", s.account_id)
    return ledger.account(alley_id, "waived" if s.billing == "waived" else "covered")


def decide_adjustment(user: User | None, adjustment_id: int, approve: bool, note: str,
                      now: datetime) -> Adjustment:
    """Staff approve (post the difference to the session's payer) or reject an
    adjustment. Audited. Commits."""
    adj = scope.get_in_alley(user, Adjustment, adjustment_id, "adjustment.not_found")
    if adj.status != "pending":
        raise Invalid("adjustment.decided")
    by = user.id if user else None
    if approve:
        charge = _charge_posting(adj.session_id)
        if charge is None:
            raise Invalid("adjustment.not_charged")
        de, ds = adj.data.get("energy_delta_cents", 0), adj.data.get("service_delta_cents", 0)
        session = db.session.get(ChargingSession, adj.session_id)
        lines = [(_payer_of(session, adj.alley_id), -(de + ds)),
                 (ledger.account(adj.alley_id, "electricity"), de),
                 (ledger.account(adj.alley_id, "service"), ds)]
        db.session.flush()
        p = ledger.post(f"adjustment:{adj.id}", "adjustment", adj.alley_id, lines, now=now,
                        by=by, session_id=adj.session_id, reason=note)
        db.session.flush()
        adj.posting_id = p.id
    adj.status = "approved" if approve else "rejected"
    adj.note, adj.decided_at, adj.decided_by = note, now, by
    ledger.audit("adjustment." + adj.status, adj.alley_id, by, now, adjustment=adj.id,
                 session=adj.session_id, delta_cents=adj.delta_cents, note=note)
    db.session.commit()
    return adj


def resolve_review(user: User | None, item_id: int, *, account_id: int | None, waive: bool,
                   note: str, now: datetime) -> ReviewItem:
    """Staff assign a reviewed session to an account of its alley (charged at its
    amount) or waive it (the alley's `waived` account bears it), with a reason.
    Audited. Commits."""
    item = scope.get_in_alley(user, ReviewItem, item_id, "review.not_found")
    if item.status != "open":
        raise Invalid("review.decided")
    if not note.strip():
        raise Invalid("review.reason_required")
    s = db.session.get(ChargingSession, item.session_id)
    by = user.id if user else None
    if waive:
        payer = ledger.account(item.alley_id, "waived")
        item.status, s.billing = "waived", "waived"
    else:
        acc = db.session.get(ResidentAccount, account_id) if account_id else None
        if acc is None or acc.alley_id != item.alley_id:
            raise Invalid("review.account")
        payer = (ledger.account(item.alley_id, "covered") if acc.kind == "exempt"
                 else ledger.resident_account(acc))
        item.status, item.account_id = "assigned", acc.id
        s.account_id, s.billing = acc.id, "covered" if acc.kind == "exempt" else "charged"
    lines = [(payer, -(s.amount_cents or 0)),
             (ledger.account(item.alley_id, "electricity"), s.energy_cents or 0),
             (ledger.account(item.alley_id, "service"), s.service_cents or 0)]
    db.session.flush()
    ledger.post(f"charge:{s.id}", "charge", item.alley_id, lines, now=now, by=by,
                session_id=s.id, reason=note)
    item.note, item.resolved_at, item.resolved_by = note, now, by
    ledger.audit("review." + item.status, item.alley_id, by, now, review=item.id,
                 session=s.id, account=item.account_id, amount_cents=s.amount_cents,
                 note=note)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid("review.decided") from None
    return item


def list_review(user: User | None, status: str = "open", limit: int = 100) -> list[ReviewItem]:
    stmt = select(ReviewItem).where(ReviewItem.status == status)
    stmt = scope.limit_to_alleys(stmt, user, ReviewItem.alley_id)
    return list(db.session.scalars(stmt.order_by(ReviewItem.id.desc()).limit(limit)))


def list_adjustments(user: User | None, status: str = "pending",
                     limit: int = 100) -> list[Adjustment]:
    stmt = select(Adjustment).where(Adjustment.status == status)
    stmt = scope.limit_to_alleys(stmt, user, Adjustment.alley_id)
    return list(db.session.scalars(stmt.order_by(Adjustment.id.desc()).limit(limit)))


def receipt(token: str) -> ChargingSession | None:
    """The settled session behind a receipt link (None for an unknown token)."""
    if not token or len(token) > 32:
        return None
    return db.session.scalar(select(ChargingSession)
                             .where(ChargingSession.receipt_token == token))

