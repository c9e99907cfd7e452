"""The alley's feeder: limit, margin, load now, expected draw, headroom; the lock that
serializes admission per alley; the samples behind the staff feeder page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, func, select, text

from ...constants import QueueState, SessionStatus
from ...extensions import db
from ...models import (
    Alley,
    Authorization,
    CardProfile,
    ChargingSession,
    FeederSample,
    Pile,
)
from ...models.base import UTCDateTime
from ...models.bulk import is_postgres
from ...settings import BudgetRule
from ..devices import config as pile_config

# The advisory-lock namespace of admission (any constant the product uses once; the
# receipt numbering's is 0x5E41).
BUDGET_LOCK = 0xB06E
EVENING = (17, 23)  # local hours [from, to) of the evening peak
TYPICAL_PORT_W = 400  # a port's draw when the alley has no charge history yet


def lock(alley_id: int) -> None:
    """Hold the alley's admission until the transaction ends: two workers answering
    authorizes at once see each other's admissions (PostgreSQL; SQLite writes one at a
    time anyway)."""
    if is_postgres():
        db.session.execute(select(func.pg_advisory_xact_lock(BUDGET_LOCK, alley_id)))


def limit_and_margin(alley: Alley, rule: BudgetRule) -> tuple[int | None, int]:
    """(feeder limit W or None: no budget, safety margin W)."""
    if alley.feeder_limit_w is None:
        return None, 0
    if alley.feeder_margin_w is not None:
        return alley.feeder_limit_w, alley.feeder_margin_w
    return alley.feeder_limit_w, alley.feeder_limit_w * rule.margin_pct // 100


def _charging(alley_id: int, now: datetime, rule: BudgetRule):
    cs = ChargingSession
    return (select(cs).join(Pile, Pile.id == cs.pile_id)
            .where(Pile.alley_id == alley_id, cs.status == SessionStatus.ACTIVE, cs.ended_at.is_(None),
                   cs.last_power_w.is_not(None),
                   cs.last_meter_at >= now - timedelta(seconds=rule.reading_fresh_s)))


def charging_sessions(alley_id: int, now: datetime, rule: BudgetRule) -> list[ChargingSession]:
    """The sessions whose readings make the load now (load_w sums theirs)."""
    return list(db.session.scalars(_charging(alley_id, now, rule)))


# The load now, the expected draw and the queue of an alley (or of one pile of it) in
# one statement, written out: built with the expression language, it cost admission
# ~4 ms of Python per card presented (bench/profile_authorize.py), more than the
# database's answer. One pass over the alley's charging sessions sums their last power
# twice, fresh readings (`_charging`'s rows: tests/test_budget_rules.py holds the two
# together) and silent ones.
_NUMBERS = text("""
SELECT
  charging.fresh_w,
  (SELECT coalesce(sum(a.expected_w), 0) FROM authorizations a
     LEFT OUTER JOIN charging_sessions cs ON cs.id = a.session_id
    WHERE a.alley_id = :alley AND (:pile IS NULL OR a.pile_id = :pile)
      AND a.admitted_at IS NOT NULL AND a.admitted_at >= :admitted_from
      AND (a.queue_state IS NULL OR a.queue_state != :dropped)
      AND (a.session_id IS NULL OR (cs.last_power_w IS NULL AND cs.status = :active))),
  (SELECT count(a.id) FROM authorizations a
    WHERE a.alley_id = :alley AND a.queue_state = :waiting),
  charging.silent_w
FROM (SELECT
        coalesce(sum(CASE WHEN cs.last_meter_at >= :fresh_from THEN cs.last_power_w END), 0.0)
          AS fresh_w,
        coalesce(sum(CASE WHEN cs.last_meter_at < :fresh_from THEN cs.last_power_w END), 0.0)
          AS silent_w
      FROM charging_sessions cs JOIN piles p ON p.id = cs.pile_id
     WHERE p.alley_id = :alley AND (:pile IS NULL OR cs.pile_id = :pile)
       AND cs.status = :active AND cs.ended_at IS NULL
       AND cs.last_power_w IS NOT NULL) AS charging
""").bindparams(bindparam("pile", type_=String), bindparam("fresh_from", type_=UTCDateTime),
                bindparam("admitted_from", type_=UTCDateTime))


def _numbers(alley_id: int, now: datetime, rule: BudgetRule,
             pile_id: str | None = None) -> tuple[float, int, int, float]:
    """(load now W, expected draw W, residents waiting, silent load W) of the alley,
    all but the queue of one pile only when `pile_id` is given. The silent load: the
    last power of sessions still charging whose last reading is older than
    `reading_fresh_s` (the pile or the worker fell silent; the port may well still
    draw). Admission counts it until the session ends or `SESSION_STALE_S` closes it;
    the load now and the over-limit stop do not (a stop is made on readings only)."""
    load, pending, queue, silent = db.session.execute(_NUMBERS, {
        "alley": alley_id, "pile": pile_id, "active": SessionStatus.ACTIVE.value,
        "fresh_from": now - timedelta(seconds=rule.reading_fresh_s),
        "admitted_from": now - timedelta(seconds=rule.admit_ttl_s),
        "dropped": QueueState.DROPPED.value, "waiting": QueueState.WAITING.value}).one()
    return float(load or 0.0), int(pending or 0), int(queue or 0), float(silent or 0.0)


def load_w(alley_id: int, now: datetime, rule: BudgetRule, pile_id: str | None = None) -> float:
    """The charging power now: the sum of the last readings of the sessions charging
    (readings older than `reading_fresh_s` do not count), of the alley or one pile."""
    return _numbers(alley_id, now, rule, pile_id)[0]


def pending_w(alley_id: int, now: datetime, rule: BudgetRule, pile_id: str | None = None) -> int:
    """The expected draw of sessions admitted (accepted, or started from the queue) that
    have not reported a reading yet, for at most `admit_ttl_s` (of the alley or one
    pile)."""
    return _numbers(alley_id, now, rule, pile_id)[1]


@dataclass(frozen=True)
class Budget:
    limit_w: int | None
    margin_w: int
    load_w: float
    pending_w: int
    queue: int = 0  # residents waiting for power
    silent_w: float = 0.0  # charging sessions whose readings stopped coming (_numbers)

    @property
    def headroom_w(self) -> float | None:
        """limit − margin − load now − expected draw − the silent sessions' last power
        (None: the alley has no budget)."""
        if self.limit_w is None:
            return None
        return self.limit_w - self.margin_w - self.load_w - self.pending_w - self.silent_w


def budget(alley: Alley, now: datetime, rule: BudgetRule) -> Budget:
    """The alley's budget now, and its queue's length (one statement)."""
    limit, margin = limit_and_margin(alley, rule)
    load, pending, queue, silent = _numbers(alley.id, now, rule)
    return Budget(limit, margin, load, pending if limit is not None else 0, queue, silent)


def pile_headroom_w(pile: Pile, now: datetime, rule: BudgetRule) -> float | None:
    """Room left under the pile's own limit (None: it has none): limit − its load now
    − the expected draw of its sessions just admitted − its silent sessions' last power."""
    if pile.power_limit_w is None:
        return None
    load, pending, _queue, silent = _numbers(pile.alley_id, now, rule, pile.id)
    return pile.power_limit_w - load - pending - silent


def expected_w(pile: Pile, card: str | None, rule: BudgetRule,
               limits: pile_config.Limits | None = None) -> int:
    """What a new session is expected to draw: the card's usual bulk power in the
    alley (its past charges), else the port limit (of `limits` when given)."""
    if card:
        prof = db.session.get(CardProfile, (pile.alley_id, card))
        if prof is not None and prof.sessions and prof.bulk_w:
            return int(math.ceil(prof.bulk_w))
    return (limits or pile_config.limits(pile, rule.limits)).max_power_w


def queue_length(alley_id: int) -> int:
    """Residents waiting for power in the alley."""
    return int(db.session.scalar(select(func.count(Authorization.id)).where(
        Authorization.alley_id == alley_id,
        Authorization.queue_state == QueueState.WAITING)) or 0)


def sample(alley: Alley, now: datetime, load: float, queue: int, limit: int | None) -> None:
    """Keep one point of the load curve. No commit."""
    db.session.add(FeederSample(alley_id=alley.id, at=now, load_w=round(load, 1), queue=queue,
                                limit_w=limit))


def day_samples(alley: Alley, day_start: datetime, day_end: datetime) -> list[FeederSample]:
    """The samples of [day_start, day_end), oldest first."""
    return list(db.session.scalars(select(FeederSample).where(
        FeederSample.alley_id == alley.id, FeederSample.at >= day_start,
        FeederSample.at < day_end).order_by(FeederSample.at)))


def evening_peak(alley: Alley, now: datetime,
                 days: int = 30) -> tuple[float | None, datetime | None]:
    """The highest load sampled in the evenings (local EVENING hours, in the alley's
    zone) of the last `days` days, and when."""
    tz = ZoneInfo(alley.timezone)
    rows = db.session.execute(select(FeederSample.at, FeederSample.load_w).where(
        FeederSample.alley_id == alley.id,
        FeederSample.at >= now - timedelta(days=days)).order_by(FeederSample.load_w.desc())
        .limit(5000)).all()
    for at, w in rows:  # highest first: the first one in the evening
        if EVENING[0] <= at.astimezone(tz).hour < EVENING[1]:
            return w, at
    return None, None


def typical_port_w(alley: Alley) -> float:
    """A port's typical draw in this alley: the mean bulk power of its cards' charges."""
    values = [w for (w,) in db.session.execute(select(CardProfile.bulk_w).where(
        CardProfile.alley_id == alley.id, CardProfile.bulk_w.is_not(None)))]
    return mean(values) if values else TYPICAL_PORT_W


def more_ports(alley: Alley, peak_w: float | None, rule: BudgetRule) -> int | None:
    """How many more ports the supply can take at the observed peak: what is left
    under limit − margin, in ports of the alley's typical draw (None: no limit)."""
    limit, margin = limit_and_margin(alley, rule)
    if limit is None:
        return None
    spare = limit - margin - (peak_w or 0.0)
    return max(0, int(spare // typical_port_w(alley)))


def set_limit(user, slug: str, fields: dict, now: datetime) -> Alley:
    """Staff set the alley's `feeder_limit_w` (None: no budget) and/or
    `feeder_margin_w` (None: the deployment's share), as present in `fields`. Commits."""
    from ..devices import alleys
    from ..errors import Invalid

    alley = alleys.get_alley(user, slug)
    for key in ("feeder_limit_w", "feeder_margin_w"):
        if key not in fields:
            continue
        value = fields[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 10_000_000):
            raise Invalid("budget.limit_range", key=key)
        setattr(alley, key, value)
    limit = alley.feeder_limit_w
    if limit is not None and alley.feeder_margin_w is not None and alley.feeder_margin_w >= limit:
        raise Invalid("budget.margin_too_big")
    db.session.commit()
    return alley


@dataclass
class FeederView:
    """What the staff feeder page shows of one alley on one local day."""

    budget: Budget
    queue: int
    samples: list  # FeederSample of the day, oldest first
    day_start: datetime
    peak_w: float | None
    peak_at: datetime | None
    more_ports: int | None
    typical_w: float
    waiting: list  # Authorization, first first
    answers: list  # Authorization, newest first


def view(alley: Alley, day: datetime, now: datetime, rule: BudgetRule,
         answers: int = 100) -> FeederView:
    """The feeder page of `alley` for the local day starting at `day` (an aware local
    midnight)."""
    day_start = day
    day_end = day + timedelta(days=1)
    peak_w, peak_at = evening_peak(alley, now)
    queue = list(db.session.scalars(select(Authorization).where(
        Authorization.alley_id == alley.id, Authorization.queue_state == QueueState.WAITING)
        .order_by(Authorization.id)))
    recent = list(db.session.scalars(select(Authorization).where(
        Authorization.alley_id == alley.id).order_by(Authorization.id.desc()).limit(answers)))
    return FeederView(budget(alley, now, rule), len(queue), day_samples(alley, day_start, day_end),
                      day_start, peak_w, peak_at, more_ports(alley, peak_w, rule),
                      typical_port_w(alley), queue, recent)


def set_pile_limit(user, pile_id: str, limit_w: int | None) -> Pile:
    """Staff set a pile's own `power_limit_w` (None: none). Commits."""
    from ..devices import piles
    from ..errors import Invalid

    pile = piles.get_pile(user, pile_id)
    if limit_w is not None and (isinstance(limit_w, bool) or not isinstance(limit_w, int)
                                or not 0 <= limit_w <= 1_000_000):
        raise Invalid("budget.limit_range", key="power_limit_w")
    pile.power_limit_w = limit_w
    db.session.commit()
    return pile
