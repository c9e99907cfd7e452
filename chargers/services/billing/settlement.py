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
   `ledger.charge_key(session id)` is added through `ledger.post_many`; the batch
   commits once. A run killed mid-batch commits nothing: the claim is undone with the
   rest and the next run settles them.

A session with no card, an unknown card or a card of another alley is priced and goes
to the review list (staff assign or waive it). Who pays (`payment`, pure): exempt
accounts are *covered* (the community pays; the amount is still shown); a monthly card
covers up to the hours it has left in its period (booked against the sold card's own
account when it was sold through `accounts.sell_monthly_card`) and the rest is charged;
a prepaid balance pays what it holds and the rest is the resident's debt
(`shortfall_cents`): nothing is cut, nothing owed disappears. Each charged session
gets a receipt serial unique per alley and local year.

Events after settlement (a late stop with more energy) make an Adjustment for staff to
approve (`on_late_stop`, called by the ingest, no commit); the session's amounts never
change. Functions that commit say so.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ...constants import AccountKind, AdjustmentStatus, ReviewStatus
from ...extensions import db
from ...models import (
    AccountCard,
    Adjustment,
    Alley,
    CardSale,
    ChargingSession,
    LedgerAccount,
    MeterSample,
    Pile,
    Posting,
    ResidentAccount,
    ReviewItem,
    Tariff,
    User,
    bulk,
)
from ...settings import AlleyDefaults, SettleRule  # re-exported: built by the doors
from .. import scope
from ..devices import alleys
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


@dataclass
class _Loaded:
    """What one batch reads before pricing (plain rows; nothing here is written)."""

    rows: list
    alley_of: dict[int, Alley]  # session id -> its pile's alley
    samples: dict[int, list[pricing.Sample]]
    holders: dict[tuple[int, str], int]  # (alley id, card) -> resident account id
    card_alleys: dict[str, set[int]]
    residents: dict[int, object]  # resident account id -> plain row
    balances: dict[int, tuple[int, int]]  # resident account id -> (ledger id, fen)
    tariffs: dict[int, list[pricing.TariffSpec]]  # alley id -> versions
    accounts: dict[tuple[int, str], int]  # (alley id, kind) -> ledger account id
    used_s: dict[int, float]  # monthly account id -> seconds covered before the batch
    serials: dict[tuple[int, int], int]  # (alley id, local year) -> last receipt number
    cards: dict[int, list[tuple]]  # monthly account id -> [(from, until, ledger id)]


@dataclass
class _Decision:
    """One session's settlement: its columns, and a review item or a posting."""

    values: dict
    review: dict | None = None
    draft: ledger.Draft | None = None
    outcome: str = "review"


def _load_sessions(ids: list[int]) -> tuple[list, dict[int, Alley], dict]:
    cs = ChargingSession
    rows = db.session.execute(
        select(cs.id, cs.pile_id, cs.card, cs.started_at, cs.ended_at, cs.energy_wh,
               cs.stop_reason, cs.meter_last_wh).where(cs.id.in_(ids)).order_by(cs.id)).all()
    piles = {p.id: p for p in db.session.scalars(
        select(Pile).where(Pile.id.in_({r.pile_id for r in rows})))}
    alleys = {a.id: a for a in db.session.scalars(
        select(Alley).where(Alley.id.in_({p.alley_id for p in piles.values()})))}
    samples: dict[int, list[pricing.Sample]] = defaultdict(list)
    for sid, ts, w, e in db.session.execute(
            select(MeterSample.session_id, MeterSample.ts, MeterSample.power_w,
                   MeterSample.energy_wh).where(MeterSample.session_id.in_(ids))):
        samples[sid].append(pricing.Sample(ts, w, e))
    return rows, {r.id: alleys[piles[r.pile_id].alley_id] for r in rows}, samples


def _load_payers(rows) -> tuple[dict, dict, dict, dict]:
    """Card holders and their accounts; the payers' balances locked (PostgreSQL,
    ordered to avoid deadlocks) so two runs never spend the same balance twice."""
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
    balances: dict[int, tuple[int, int]] = {}
    if residents:
        la = LedgerAccount
        for row in db.session.execute(
                select(la.id, la.resident_id, la.balance_cents)
                .where(la.resident_id.in_(residents)).order_by(la.id).with_for_update()):
            balances[row.resident_id] = (row.id, int(row.balance_cents))
    for acc in residents.values():
        if acc.id not in balances:
            balances[acc.id] = (ledger.resident_account(acc).id, 0)
    return holders, card_alleys, residents, balances


def _load(ids: list[int]) -> _Loaded:
    """Step 1: read the batch's sessions, samples, payers, tariffs and accounts (every
    ledger account the batch may touch is made here, with an id)."""
    rows, alley_of, samples = _load_sessions(ids)
    holders, card_alleys, residents, balances = _load_payers(rows)
    alley_ids = {a.id for a in alley_of.values()}
    tz = {a.id: a.timezone for a in alley_of.values()}
    tariffs = {aid: [pricing.TariffSpec.from_row(t, tz[aid]) for t in db.session.scalars(
        select(Tariff).where(Tariff.alley_id == aid, Tariff.effective_from.is_not(None)))]
        for aid in alley_ids}
    accounts = {(aid, kind): ledger.account(aid, kind).id for aid in alley_ids
                for kind in ("electricity", "service", "covered", "occupancy")}
    used_s = {a.id: monthly_used_seconds(a) for a in residents.values()
              if a.kind == AccountKind.MONTHLY and a.monthly_hours is not None and a.monthly_from}
    db.session.flush()
    return _Loaded(rows, alley_of, samples, holders, card_alleys, residents, balances,
                   tariffs, accounts, used_s, _last_serials(alley_of, rows),
                   card_accounts([a.id for a in residents.values() if a.kind == AccountKind.MONTHLY]))


def card_accounts(ids: list[int]) -> dict[int, list[tuple]]:
    """The monthly cards sold to these accounts: (period from, until, ledger account)."""
    out: dict[int, list[tuple]] = defaultdict(list)
    if ids:
        for acc_id, start, until, la in db.session.execute(
                select(CardSale.account_id, CardSale.period_from, CardSale.period_until,
                       CardSale.ledger_account_id).where(CardSale.account_id.in_(ids))):
            out[acc_id].append((start, until, la))
    return out


def _covering(cards: dict, acc_id: int, at: datetime, default: int) -> int:
    """The ledger account that bears what a monthly card covers: the sold card whose
    period holds the session's start, else the alley's `covered`."""
    return next((la for start, until, la in cards.get(acc_id, ()) if start <= at < until),
                default)


def _year(r, alley: Alley) -> int:
    return r.ended_at.astimezone(alleys.zone(alley)).year


# The advisory-lock namespace of receipt numbering (any constant the product uses once).
SERIAL_LOCK = 0x5E41


def _last_serials(alley_of: dict[int, Alley], rows) -> dict[tuple[int, int], int]:
    """The last receipt number per (alley, local year) the batch will number in. Two
    runs never hand out one number: each alley's numbering is held by a transaction
    advisory lock (PostgreSQL), in alley order. Not the alley's row: the ingest updates
    it (its state version) while holding the sessions this run settles, and a row lock
    here made the two wait on each other (a deadlock PostgreSQL broke by failing one)."""
    alley_ids = sorted({a.id for a in alley_of.values()})
    if bulk.is_postgres():
        for alley_id in alley_ids:
            db.session.execute(select(func.pg_advisory_xact_lock(SERIAL_LOCK, alley_id)))
    out: dict[tuple[int, int], int] = {}
    for key in {(alley_of[r.id].id, _year(r, alley_of[r.id])) for r in rows}:
        last = db.session.scalar(select(func.max(ChargingSession.receipt_serial)).where(
            ChargingSession.receipt_serial.like(f"A{key[0]}-{key[1]}-%")))
        out[key] = int(last.rsplit("-", 1)[1]) if last else 0
    return out


def receipt_serial(book: _Loaded, r, alley: Alley) -> str:
    """The next receipt number of the alley in the session's local year (its end):
    `A<alley id>-<year>-<000001…>`, unique per alley and year."""
    key = (alley.id, _year(r, alley))
    book.serials[key] += 1
    return f"A{alley.id}-{key[1]}-{book.serials[key]:06d}"


def monthly_used_seconds(acc, exclude: int | None = None) -> float:
    """Seconds of charging the monthly card has covered in its current period: every
    covered second, also of sessions it covered only in part (sessions settled before
    `covered_s` was kept count whole when covered)."""
    cs = ChargingSession
    rows = db.session.execute(
        select(cs.covered_s, cs.billing, cs.started_at, cs.ended_at)
        .where(cs.account_id == acc.id, cs.settled_at.is_not(None),
               cs.started_at >= acc.monthly_from, cs.started_at < acc.monthly_until,
               cs.id != (exclude or -1))).all()
    return sum(c if c is not None else (e - s).total_seconds()
               for c, billing, s, e in rows
               if c is not None or (billing == "covered" and s and e))


def _tariff(book: _Loaded, alley: Alley, at: datetime) -> pricing.TariffSpec:
    versions = book.tariffs.get(alley.id, [])
    chosen = pricing.tariff_at(versions, at)
    if chosen is None and versions:  # before the first version: the first one
        chosen = min(versions, key=lambda t: t.effective_from)
    return chosen or pricing.TariffSpec(alley.tariff_cents_per_kwh,
                                        timezone=alley.timezone or AlleyDefaults.timezone)


def _review_reason(book: _Loaded, r, alley: Alley) -> str | None:
    if not r.card:
        return "no_card"
    if (alley.id, r.card) in book.holders:
        return None
    return "other_alley" if book.card_alleys.get(r.card) else "unknown_card"


@dataclass(frozen=True)
class _Payment:
    """Who bears a session: `covered_cents` by the community or the card, the rest
    (`charged_cents`) by the resident's balance, of which `shortfall_cents` it did not
    hold (the resident's debt)."""

    billing: str  # covered / charged
    covered_s: int = 0
    covered_cents: int = 0
    charged_cents: int = 0
    shortfall_cents: int = 0


def payment(acc, usage: pricing.Usage, priced: pricing.Priced, used_s: float,
            available_cents: int) -> _Payment:
    """Pure: how a resident account pays a priced session. Exempt: covered. A monthly
    card in its period covers up to its remaining hours (`used_s` already covered);
    the rest is charged to the balance like a prepaid session. The balance may go
    below zero: what it does not hold is the shortfall, the resident's debt."""
    amount = priced.amount_cents
    if acc.kind == AccountKind.EXEMPT:
        return _Payment("covered", priced.duration_s, amount)
    if "failed" in priced.rules:  # nothing flowed: no charge, no card hours
        return _Payment("charged")
    covered_s, charged = 0, amount
    if (acc.kind == AccountKind.MONTHLY and acc.monthly_from is not None
            and acc.monthly_until is not None
            and acc.monthly_from <= usage.started_at < acc.monthly_until):
        left = (priced.duration_s if acc.monthly_hours is None
                else max(0, int(acc.monthly_hours * 3600 - used_s)))
        covered_s = min(priced.duration_s, left)
        charged = pricing.cover_split(priced, usage, covered_s)
        if charged == 0:
            return _Payment("covered", covered_s, amount)
    paid, short = pricing.split_paid(charged, available_cents)
    return _Payment("charged", covered_s, amount - charged, charged, short)


def _payer_lines(book_accounts: dict, alley_id: int, resident_ledger_id: int,
                 priced: pricing.Priced, pay: _Payment,
                 covering: int | None = None) -> list[tuple[int, int]]:
    """The charge posting's lines: the payers' debits (the covered part on `covering`,
    a sold card's account, or the alley's `covered`), the takings' credits."""
    return [(resident_ledger_id, -pay.charged_cents),
            (covering or book_accounts[(alley_id, "covered")], -pay.covered_cents),
            (book_accounts[(alley_id, "electricity")], priced.energy_cents),
            (book_accounts[(alley_id, "service")], priced.service_cents),
            (book_accounts[(alley_id, "occupancy")], priced.occupancy_cents)]


def _decide(book: _Loaded, r, spent: dict, now: datetime) -> _Decision:
    """Step 2 (pure over `book`): price one session and choose who pays. `spent`
    carries what earlier sessions of the batch took from each balance or card."""
    alley = book.alley_of[r.id]
    spec = _tariff(book, alley, r.started_at)
    smp = book.samples.get(r.id, [])
    usage = pricing.Usage(r.started_at, r.ended_at,
                          pricing.metered_wh(r.energy_wh, smp, r.ended_at, r.meter_last_wh),
                          smp, r.stop_reason)
    priced = pricing.price(spec, usage)
    # The metered energy (all segments) is the session's from now on.
    values = {"id": r.id, "billing": None, "account_id": None,
              "energy_wh": float(usage.energy_wh)}
    reason = _review_reason(book, r, alley)
    if reason:
        _write(values, priced)
        values["billing"] = "review"
        return _Decision(values, review={"session_id": r.id, "alley_id": alley.id,
                                         "reason": reason, "status": "open", "note": "",
                                         "created_at": now})
    acc = book.residents[book.holders[(alley.id, r.card)]]
    ledger_id, balance = book.balances[acc.id]
    pay = payment(acc, usage, priced, book.used_s.get(acc.id, 0) + spent.get(("s", acc.id), 0),
                  balance + spent.get(ledger_id, 0))
    spent[("s", acc.id)] = spent.get(("s", acc.id), 0) + pay.covered_s
    spent[ledger_id] = spent.get(ledger_id, 0) - pay.charged_cents
    values.update(account_id=acc.id, billing=pay.billing, covered_s=pay.covered_s,
                  covered_cents=pay.covered_cents, shortfall_cents=pay.shortfall_cents,
                  receipt_serial=receipt_serial(book, r, alley))
    _write(values, priced)
    lines = _payer_lines(book.accounts, alley.id, ledger_id, priced, pay, _covering(
        book.cards, acc.id, r.started_at, book.accounts[(alley.id, "covered")]))
    draft = ledger.Draft(ledger.charge_key(r.id), "charge", alley.id, lines, session_id=r.id)
    outcome = ("shortfall" if pay.shortfall_cents else
               "free" if priced.amount_cents == 0 else pay.billing)
    return _Decision(values, draft=draft, outcome=outcome)


def settle_batch(now: datetime, n: int, counts: Counter | None = None,
                 after: int = 0) -> tuple[int, int]:
    """Claim (ids above `after`), price and post up to `n` sessions in one transaction
    (commits). Returns how many were claimed and the highest id claimed (or `after`).

    Load → decide (pure) → write: the sessions' columns and review items as multi-row
    statements (chargers.models.bulk), the charges through `ledger.post_many`."""
    counts = counts if counts is not None else Counter()
    ids = claim(now, n, after)
    if not ids:
        db.session.commit()
        return 0, after
    book = _load(ids)
    spent: dict = {}
    decisions = [_decide(book, r, spent, now) for r in book.rows]
    bulk.update_many(ChargingSession.__table__, [d.values for d in decisions], _WRITTEN)
    bulk.insert_many(ReviewItem.__table__, [d.review for d in decisions if d.review])
    ledger.post_many([d.draft for d in decisions if d.draft], now=now)
    counts.update(d.outcome for d in decisions)
    db.session.commit()
    return len(ids), ids[-1]


# Session columns settlement writes (besides settled_at, set by the claim).
_WRITTEN = ("energy_wh", "energy_cents", "service_cents", "amount_cents", "tariff_id",
            "tariff_cents_per_kwh", "tier", "tier_evidence", "bill", "receipt_token",
            "billing", "account_id", "covered_s", "covered_cents", "shortfall_cents",
            "occupancy_cents", "receipt_serial")


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
    values.setdefault("energy_wh", float(pricing.frac(priced.energy_wh)))
    values["occupancy_cents"] = priced.occupancy_cents
    values.setdefault("covered_s", None)
    values.setdefault("covered_cents", None)
    values.setdefault("shortfall_cents", None)
    values.setdefault("receipt_serial", None)


# --- after settlement ------------------------------------------------------------

def _reprice(s: ChargingSession, ended_at: datetime, energy_wh: float,
             stop_reason: str | None) -> pricing.Priced:
    pile = db.session.get(Pile, s.pile_id)
    tariff = db.session.get(Tariff, s.tariff_id) if s.tariff_id else None
    tz = pile.alley.timezone or AlleyDefaults.timezone
    spec = (pricing.TariffSpec.from_row(tariff, tz) if tariff
            else pricing.TariffSpec(pile.alley.tariff_cents_per_kwh, timezone=tz))
    smp = [pricing.Sample(ts, w, e) for ts, w, e in db.session.execute(
        select(MeterSample.ts, MeterSample.power_w, MeterSample.energy_wh)
        .where(MeterSample.session_id == s.id))]
    return pricing.price(spec, pricing.Usage(s.started_at, ended_at, energy_wh, smp,
                                             stop_reason))


def _usage_of(s: ChargingSession) -> pricing.Usage:
    smp = [pricing.Sample(ts, w, e) for ts, w, e in db.session.execute(
        select(MeterSample.ts, MeterSample.power_w, MeterSample.energy_wh)
        .where(MeterSample.session_id == s.id))]
    return pricing.Usage(s.started_at, s.ended_at, s.energy_wh or 0, smp, s.stop_reason)


def _as_settled(s: ChargingSession, priced: pricing.Priced) -> pricing.Priced:
    """The session's settled figures (never repriced) in a Priced."""
    from dataclasses import replace

    return replace(priced, energy_cents=s.energy_cents or 0,
                   service_cents=s.service_cents or 0, amount_cents=s.amount_cents or 0,
                   occupancy_cents=s.occupancy_cents or 0)


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
                                                     Adjustment.status == AdjustmentStatus.PENDING))
    cause_text = f"{cause}:{ended_at.isoformat()}"[:64]
    if db.session.scalar(select(Adjustment.id).where(
            Adjustment.session_id == s.id, Adjustment.cause == cause_text,
            Adjustment.status != AdjustmentStatus.PENDING)) is not None:
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


def charge_posting(session_id: int) -> Posting | None:
    """A session's charge posting (None before it is charged)."""
    return db.session.scalar(select(Posting).where(Posting.key == ledger.charge_key(session_id)))


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
    if adj.status != AdjustmentStatus.PENDING:
        raise Invalid("adjustment.decided")
    by = user.id if user else None
    if approve:
        charge = charge_posting(adj.session_id)
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
    adj.status = AdjustmentStatus.APPROVED if approve else AdjustmentStatus.REJECTED
    adj.note, adj.decided_at, adj.decided_by = note, now, by
    ledger.audit("adjustment." + adj.status, adj.alley_id, by, now, adjustment=adj.id,
                 session=adj.session_id, delta_cents=adj.delta_cents, note=note)
    db.session.commit()
    return adj


def resolve_review(user: User | None, item_id: int, *, account_id: int | None, waive: bool,
                   note: str, now: datetime) -> ReviewItem:
    """Staff assign a reviewed session to an account of its alley (paid as settlement
    would have: exempt and a monthly card's hours cover it, the rest is charged to the
    balance) or waive it (the alley's `waived` account bears it), with a reason.
    Audited. Commits."""
    item = scope.get_in_alley(user, ReviewItem, item_id, "review.not_found")
    if item.status != ReviewStatus.OPEN:
        raise Invalid("review.decided")
    if not note.strip():
        raise Invalid("review.reason_required")
    s = db.session.get(ChargingSession, item.session_id)
    by = user.id if user else None
    accounts = {(item.alley_id, k): ledger.account(item.alley_id, k).id
                for k in ("covered", "electricity", "service", "occupancy", "waived")}
    priced = _as_settled(s, _reprice(s, s.ended_at, s.energy_wh, s.stop_reason))
    if waive:
        item.status, s.billing = "waived", "waived"
        # The whole amount as the "covered" part, borne by the alley's `waived`.
        pay = _Payment("waived", 0, s.amount_cents or 0)
        resident_ledger = covering = accounts[(item.alley_id, "waived")]
    else:
        pay, resident_ledger, covering = _assign(item, s, account_id, priced)
    lines = _payer_lines(accounts, item.alley_id, resident_ledger, priced, pay, covering)
    try:
        ledger.post(ledger.charge_key(s.id), "charge", item.alley_id, lines, now=now, by=by,
                    session_id=s.id, reason=note)
    except IntegrityError:
        db.session.rollback()
        raise Invalid("review.decided") from None
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


def _assign(item: ReviewItem, s: ChargingSession, account_id: int | None,
            priced: pricing.Priced) -> tuple[_Payment, int, int | None]:
    """A reviewed session given to an account of its alley, paid by the same rule as
    settlement (exempt and a monthly card's hours cover it; the rest is charged): the
    payment, the resident's ledger account and the account bearing the covered part."""
    acc = db.session.get(ResidentAccount, account_id) if account_id else None
    if acc is None or acc.alley_id != item.alley_id:
        raise Invalid("review.account")
    pay = payment(acc, _usage_of(s), priced,
                  monthly_used_seconds(acc, exclude=s.id) if acc.monthly_from else 0,
                  ledger.balance(acc))
    item.status, item.account_id = "assigned", acc.id
    s.account_id, s.billing = acc.id, pay.billing
    s.covered_s, s.covered_cents = pay.covered_s, pay.covered_cents
    s.shortfall_cents = pay.shortfall_cents
    alley = db.session.get(Alley, item.alley_id)
    s.receipt_serial = receipt_serial(SimpleNamespace(
        serials=_last_serials({s.id: alley}, [s])), s, alley)
    covering = _covering(card_accounts([acc.id]), acc.id, s.started_at, None)
    return pay, ledger.resident_account(acc).id, covering


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

