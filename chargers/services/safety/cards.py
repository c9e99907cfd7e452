"""Cards and their batteries: what each card's charges usually look like (the baseline
the grade compares with), the riskiest cards of an alley this month, and staff's
"battery checked" marks (a line in the card's history; its sessions keep their grades).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ...constants import RISK_ORDER, LimitStop, RiskGrade, RiskReason
from ...extensions import db
from ...models import AccountCard, CardCheck, CardProfile, ChargingSession, Pile, User
from ...settings import AlleyDefaults, RiskRule
from ..billing import accounts
from ..devices import alleys
from ..errors import Invalid
from . import risk

# How a healthy full charge moves the card's usual figures: bulk power as a moving
# average; the pack's energy as the largest and the least of its full charges, each
# forgetting slowly (a pack loses about a fifth of its capacity over 300-500 full
# cycles: 0.2 % of the way to the newest charge per charge is faster than that, and slow
# enough that a week of half-full charges does not erase the one begun nearly empty).
BULK_WEIGHT = 0.3
ENERGY_FORGET = 0.002


def fold(prof, bulk: float, energy: float) -> None:
    """Fold one healthy full charge into a card's profile (a CardProfile, or anything
    with its fields: bench/risk_replay.py)."""
    if not prof.sessions:
        prof.bulk_w, prof.energy_wh, prof.energy_low_wh = bulk, energy, energy
    else:
        prof.bulk_w = (1 - BULK_WEIGHT) * prof.bulk_w + BULK_WEIGHT * bulk
        low = prof.energy_low_wh if prof.energy_low_wh is not None else prof.energy_wh
        prof.energy_wh = max(energy, (1 - ENERGY_FORGET) * prof.energy_wh + ENERGY_FORGET * energy)
        prof.energy_low_wh = min(energy, (1 - ENERGY_FORGET) * low + ENERGY_FORGET * energy)
    prof.sessions = (prof.sessions or 0) + 1


def full_energy(prof, rule: RiskRule) -> float | None:
    """The energy this card's pack takes charged full from the emptiest start its holder
    makes: the largest learned full charge, plus `no_taper_spread` times the spread of
    the learned charges over their number less one. The largest of n charges begun at
    scattered levels falls short of the emptiest start by about that much (the usual
    estimate of a range's top from n draws in it); a charge begun emptier than all the
    learned ones is what a healthy pack looks like past the largest. None: no
    history."""
    if not prof.sessions or not prof.energy_wh:
        return None
    if prof.sessions < 2 or prof.energy_low_wh is None:
        return prof.energy_wh
    return prof.energy_wh + rule.no_taper_spread * (
        prof.energy_wh - prof.energy_low_wh) / (prof.sessions - 1)


def baseline_of(prof, rule: RiskRule, peer_rise_c: float | None = None) -> risk.Baseline:
    """The grade's view of a card's profile (None or no sessions: no history)."""
    if prof is None or not prof.sessions:
        return risk.Baseline(peer_rise_c=peer_rise_c)
    return risk.Baseline(prof.bulk_w, prof.energy_wh, prof.sessions, peer_rise_c,
                         full_energy(prof, rule))


def learn(s: ChargingSession, alley_id: int, now: datetime) -> bool:
    """Fold a finished session into its card's profile when it was a healthy full
    charge (ended full and tapered; graded low, or mid for no_taper alone). Marks the
    session learned. No commit."""
    st = dict(s.risk_state or {})
    if st.get("fin"):
        return False
    s.risk_state = {**st, "fin": 1}
    full = s.stop_reason == "full" or s.guard_reason == LimitStop.FULL
    # A charge that tapered and ended full is a healthy pack's, even when it ran past
    # the usual energy on the way (a no_taper mid: it began emptier than before), and
    # it is the very charge that teaches the larger usual energy.
    healthy = (s.risk or RiskGrade.LOW) == RiskGrade.LOW or set(s.risk_reasons or []) <= {
        RiskReason.NO_TAPER.value} and (s.risk or RiskGrade.LOW) == RiskGrade.MID
    if not s.card or not healthy or not full or not st.get("tp"):
        return False
    bulk, energy = st.get("bk"), s.energy_wh or 0.0
    if not bulk or energy <= 0:
        return False
    prof = db.session.get(CardProfile, (alley_id, s.card))
    if prof is None:
        prof = CardProfile(alley_id=alley_id, card=s.card, sessions=0)
        db.session.add(prof)
    fold(prof, bulk, energy)
    prof.updated_at = now
    return True


def learn_finished(now: datetime, since: timedelta = timedelta(days=2)) -> int:
    """Learn from every session that ended since `since` ago and was not learned yet.
    Commits. Returns how many profiles moved."""
    rows = db.session.execute(
        select(ChargingSession, Pile.alley_id).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(ChargingSession.ended_at.is_not(None), ChargingSession.ended_at >= now - since,
               ChargingSession.risk_state.is_not(None))
        .order_by(ChargingSession.ended_at)).all()
    n = sum(learn(s, alley_id, now) for s, alley_id in rows)
    db.session.commit()
    return n


def month_start(alley, now: datetime) -> datetime:
    """The first instant of `now`'s month in the alley's zone."""
    tz = ZoneInfo(alley.timezone or AlleyDefaults.timezone)
    local = now.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def riskiest(user: User | None, slug: str, now: datetime, limit: int = 20) -> list[dict]:
    """The alley's cards with mid or high sessions this month, worst first: card, its
    holder (the active account: household, name), sessions, highs, mids, the reasons
    seen, the last risky session and the last battery check."""
    alley = alleys.get_alley(user, slug)
    since = month_start(alley, now)
    rows = db.session.execute(
        select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(Pile.alley_id == alley.id, ChargingSession.card.is_not(None),
               ChargingSession.started_at >= since)
        .order_by(ChargingSession.started_at)).scalars().all()
    by: dict[str, dict] = defaultdict(lambda: {"sessions": 0, "high": 0, "mid": 0,
                                               "reasons": set(), "last": None})
    for s in rows:
        c = by[s.card]
        c["sessions"] += 1
        if s.risk in (RiskGrade.HIGH, RiskGrade.MID):
            c[s.risk] += 1
            c["reasons"].update(s.risk_reasons or [])
            c["last"] = s
    risky = [k for k, v in by.items() if v["high"] or v["mid"]]
    checks = last_checks(alley.id, risky)
    holders = accounts.active_holders({(alley.id, card) for card in risky})
    out = [{"card": card, "sessions": v["sessions"], "high": v["high"], "mid": v["mid"],
            "worst": RiskGrade.HIGH if v["high"] else RiskGrade.MID,
            "reasons": sorted(v["reasons"]), "last": v["last"], "check": checks.get(card),
            "holder": holders.get((alley.id, card))}
           for card, v in by.items() if v["high"] or v["mid"]]
    out.sort(key=lambda r: (-RISK_ORDER[r["worst"]], -r["high"], -r["mid"], r["card"]))
    return out[:limit]


def last_checks(alley_id: int, cards: list[str]) -> dict[str, CardCheck]:
    """The newest battery check of each card."""
    out: dict[str, CardCheck] = {}
    if not cards:
        return out
    for c in db.session.scalars(select(CardCheck).where(
            CardCheck.alley_id == alley_id, CardCheck.card.in_(cards))
            .order_by(CardCheck.checked_at)):
        out[c.card] = c
    return out


def history(user: User | None, slug: str, card: str, limit: int = 50) -> tuple[list, list]:
    """A card's graded sessions (newest first) and its battery checks."""
    alley = alleys.get_alley(user, slug)
    sessions = db.session.scalars(
        select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(Pile.alley_id == alley.id, ChargingSession.card == card)
        .order_by(ChargingSession.started_at.desc()).limit(limit)).all()
    checks = db.session.scalars(select(CardCheck).where(
        CardCheck.alley_id == alley.id, CardCheck.card == card)
        .order_by(CardCheck.checked_at.desc())).all()
    return list(sessions), list(checks)


def known_card(alley_id: int, typed: str) -> str | None:
    """The card as the alley knows it (charged at one of its piles, or held by one of
    its accounts), whatever the case it was typed in; None: not this alley's."""
    low = typed.lower()
    charged = select(ChargingSession.card).join(Pile, Pile.id == ChargingSession.pile_id).where(
        Pile.alley_id == alley_id, func.lower(ChargingSession.card) == low).limit(1)
    held = select(AccountCard.card).where(AccountCard.alley_id == alley_id,
                                          func.lower(AccountCard.card) == low).limit(1)
    return db.session.scalar(held) or db.session.scalar(charged)


def mark_checked(user: User, slug: str, card: str, note: str, now: datetime) -> CardCheck:
    """Staff checked the card's battery and charger. Commits."""
    alley = alleys.get_alley(user, slug)
    card, note = (card or "").strip(), (note or "").strip()
    if not card or len(card) > 64:
        raise Invalid("risk.card_invalid")
    if len(note) > 1000:
        raise Invalid("risk.note_too_long")
    card = known_card(alley.id, card)
    if card is None:
        raise Invalid("risk.card_unknown")
    row = CardCheck(alley_id=alley.id, card=card, checked_at=now, checked_by=user.id, note=note)
    db.session.add(row)
    db.session.commit()
    return row
