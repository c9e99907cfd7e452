"""The balance guard: sessions still charging that must stop, each asked once through
the command service with the reason recorded on the session and in the money audit.

- prepaid: the running cost (the session priced as if it ended now) reaches the
  balance, or there is no balance at all;
- monthly card: past its hours in the period, or a second session while one runs
  (one at a time); outside its period it is treated as prepaid;
- no card, unknown card or a card of another alley: after a grace, unless the alley
  allows unbilled charging;
- exempt: never;
- a session that began on our answer to the pile's `authorize` (services/budget): never,
  the pile keeps the limits we gave it (`max_wh`, `max_minutes`) and stops it itself.
  Piles without the feature, and sessions a pile began on its own (its offline policy),
  keep the guard.

`check` commits.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from ...constants import AccountKind, SessionStatus
from ...extensions import db
from ...models import AccountCard, Alley, Authorization, ChargingSession, MeterSample, Pile
from ...settings import GuardRule  # re-exported: built by the doors
from ..charging import sessions
from . import accounts, ledger, pricing
from .settlement import monthly_used_seconds
from .tariffs import in_force

REASONS = ("balance", "monthly_hours", "monthly_busy", "unknown_card")


def running_cost(s: ChargingSession, alley: Alley, now: datetime) -> int:
    """What the session would cost if it ended now (fen)."""
    t = in_force(alley, s.started_at)
    spec = pricing.TariffSpec.from_row(t) if t else pricing.TariffSpec(alley.tariff_cents_per_kwh)
    smp = [pricing.Sample(ts, w, e) for ts, w, e in db.session.execute(
        select(MeterSample.ts, MeterSample.power_w, MeterSample.energy_wh)
        .where(MeterSample.session_id == s.id))]
    return pricing.price(spec, pricing.Usage(s.started_at, max(now, s.started_at),
                                             s.energy_wh or 0, smp)).amount_cents


def reason_to_stop(s: ChargingSession, alley: Alley, now: datetime,
                   rule: GuardRule) -> str | None:
    """Why this running session must stop now (None: it may go on)."""
    acc = accounts.find_by_card(alley.id, s.card) if s.card else None
    if acc is None:
        if alley.allow_unbilled:
            return None
        waited = now - s.started_at >= timedelta(seconds=rule.unknown_card_grace_s)
        return "unknown_card" if waited else None
    if acc.kind == AccountKind.EXEMPT:
        return None
    if acc.kind == AccountKind.MONTHLY and acc.monthly_from and acc.monthly_until and (
            acc.monthly_from <= s.started_at < acc.monthly_until):
        earlier = db.session.scalar(select(ChargingSession.id).join(
            AccountCard, (AccountCard.card == ChargingSession.card)
            & (AccountCard.account_id == acc.id)).join(
            Pile, (Pile.id == ChargingSession.pile_id) & (Pile.alley_id == alley.id)).where(
            ChargingSession.status == SessionStatus.ACTIVE, ChargingSession.ended_at.is_(None),
            ChargingSession.guard_stop_at.is_(None),
            ChargingSession.started_at < s.started_at).limit(1))
        if earlier is not None:
            return "monthly_busy"
        if acc.monthly_hours is None:
            return None
        used = monthly_used_seconds(acc) + (now - s.started_at).total_seconds()
        if used < acc.monthly_hours * 3600:
            return None
        # Past its hours the rest is charged to the balance: go on while it holds.
        return "monthly_hours" if ledger.balance(acc) <= 0 else None
    bal = ledger.balance(acc)
    if bal <= 0 or running_cost(s, alley, now) >= bal:
        return "balance"
    return None


def check(now: datetime, rule: GuardRule) -> Counter:
    """Ask the piles to stop every running session that must stop (once each).
    Commits. Returns counts by reason."""
    counts: Counter = Counter()
    rows = db.session.execute(
        select(ChargingSession, Pile).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(ChargingSession.status == SessionStatus.ACTIVE, ChargingSession.ended_at.is_(None),
               ChargingSession.started_at.is_not(None),
               ChargingSession.guard_stop_at.is_(None))
        .order_by(ChargingSession.started_at)).all()
    authorized = set(db.session.scalars(select(Authorization.session_id).where(
        Authorization.session_id.in_([s.id for s, _p in rows])))) if rows else set()
    for s, pile in rows:
        if s.id in authorized:
            continue
        alley = pile.alley
        why = reason_to_stop(s, alley, now, rule)
        if why is None:
            continue
        cmd = sessions.ask_stop(pile, s, why, now)
        ledger.audit("guard.stop", alley.id, None, now, session=s.id, card=s.card, reason=why,
                     command=cmd.id)
        counts[why] += 1
        db.session.commit()
    return counts


