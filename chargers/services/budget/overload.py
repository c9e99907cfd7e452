"""The load above the feeder's limit anyway (piles without `authorize`, a fire pump on
the same supply, a wrong limit): once it has stayed over for more than
`over_readings` readings (of `reading_s` each), the backend stops the newest sessions
until the load is under the limit, tells their holders, and raises an `over_budget`
alert for staff (cleared when the load is back under). A pile with its own limit (its
supply line) is watched the same way, its own newest sessions stopped. Every check
also keeps a point of the feeder's load curve. `check` commits (one transaction per
alley)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from ...constants import OPEN_ALERT, LimitStop
from ...extensions import db
from ...models import Alert, Alley, FeederState, Pile
from ...settings import AlertRules, BudgetRule, Paging
from ..alerts import lifecycle as alerts
from ..billing import messages
from ..billing.accounts import active_holder
from ..charging import sessions as charging_sessions
from ..devices import alleys
from . import feeder

log = logging.getLogger(__name__)

ALERT = "over_budget"
NOTICE_STOP = "budget_stop"


def _state(alley: Alley) -> FeederState:
    st = db.session.get(FeederState, alley.id)
    if st is None:
        st = FeederState(alley_id=alley.id, over_readings=0)
        db.session.add(st)
    return st


def _open_alerts(alley: Alley) -> list[Alert]:
    return list(db.session.scalars(select(Alert).join(Pile, Pile.id == Alert.pile_id).where(
        Pile.alley_id == alley.id, Alert.code == ALERT,
        Alert.status.in_([s.value for s in OPEN_ALERT]))))


def check_alley(alley: Alley, now: datetime, rule: BudgetRule, alert_rules: AlertRules,
                language: str = "zh") -> int:
    """Sample the alley's load, and stop sessions when it stayed over the feeder's limit,
    or a pile's load over that pile's own limit (see the module docstring). Returns how
    many were asked to stop. No commit."""
    feeder.lock(alley.id)
    limit, _margin = feeder.limit_and_margin(alley, rule)
    sessions = feeder.charging_sessions(alley.id, now, rule)
    # A session already asked to stop draws until the pile confirms: it still counts.
    load = sum(s.last_power_w or 0.0 for s in sessions)
    st = _state(alley)
    if st.last_reading_at is None or now - st.last_reading_at >= timedelta(
            seconds=max(1, rule.reading_s // 2)):
        feeder.sample(alley, now, load, feeder.queue_length(alley.id), limit)
        st.last_reading_at = now
    stopped: list = []
    alley_over = limit is not None and load > limit
    if not alley_over:
        st.over_since, st.over_readings = None, 0
    else:
        st.over_since, due = _watch(st.over_since, now, rule)
        st.over_readings = int((now - st.over_since).total_seconds() // rule.reading_s) + 1
        if due:
            held = (now - st.over_since).total_seconds()
            stopped = _stop_newest(alley, sessions, load, limit, now, language)
            _raise(stopped, load, limit, f"the feeder limit {limit} W for {int(held)} s",
                   now, alert_rules)
            st.over_since = now  # the next stop waits for fresh readings again
            if stopped:
                st.last_stop_at = now
                log.warning("alley %s: load %.0f W over %d W for %d s; %d session(s) stopped",
                            alley.slug, load, limit, held, len(stopped))
    over_piles, stopped_on_piles = _check_piles(alley, sessions, now, rule, alert_rules,
                                                language)
    stopped += stopped_on_piles
    if not alley_over:
        _clear(alley, load, now, alert_rules, over_piles)
    return len(stopped)


def _watch(since: datetime | None, now: datetime, rule: BudgetRule) -> tuple[datetime, bool]:
    """A load over its limit at `now`: (since when, whether it has stayed over for more
    than `over_readings` readings: time to stop sessions)."""
    since = since or now
    return since, (now - since).total_seconds() > rule.over_readings * rule.reading_s


def _check_piles(alley: Alley, sessions: list, now: datetime, rule: BudgetRule,
                 alert_rules: AlertRules, language: str) -> tuple[set[str], list]:
    """The same watch on each pile that has its own limit (its supply line): its newest
    sessions stopped when its own load stayed over. Returns the ids of the piles over
    their limit now, and (pile, session) of those asked to stop."""
    over: set[str] = set()
    stopped: list = []
    piles = list(db.session.scalars(select(Pile).where(
        Pile.alley_id == alley.id, Pile.power_limit_w.is_not(None)).order_by(Pile.id)))
    for pile in piles:
        mine = [s for s in sessions if s.pile_id == pile.id]
        load = sum(s.last_power_w or 0.0 for s in mine)
        if load <= pile.power_limit_w:
            pile.over_limit_since = None
            continue
        over.add(pile.id)
        pile.over_limit_since, due = _watch(pile.over_limit_since, now, rule)
        if not due:
            continue
        held = (now - pile.over_limit_since).total_seconds()
        done = _stop_newest(alley, mine, load, pile.power_limit_w, now, language)
        _raise(done, load, pile.power_limit_w,
               f"pile {pile.label or pile.id}'s own limit {pile.power_limit_w} W for "
               f"{int(held)} s", now, alert_rules)
        pile.over_limit_since = now
        stopped.extend(done)
        log.warning("pile %s: load %.0f W over its own %d W for %d s; %d session(s) stopped",
                    pile.id, load, pile.power_limit_w, held, len(done))
    return over, stopped


def _raise(stopped: list, load: float, limit: int, what: str, now: datetime,
           alert_rules: AlertRules) -> None:
    """The over-limit alert for staff, on the pile of the first session stopped."""
    if not stopped:
        return
    alerts.on_fault(stopped[0][0], None, ALERT, True, round(load),
                    f"load {round(load)} W over {what}: {len(stopped)} session(s) stopped", now, now,
                    rules=alert_rules)


def _clear(alley: Alley, load: float, now: datetime, alert_rules: AlertRules,
           over_piles: set[str]) -> None:
    """The feeder under its limit: the alley's open over-limit alerts clear, but not on
    a pile still over its own."""
    for a in _open_alerts(alley):
        if a.pile_id in over_piles:
            continue
        alerts.on_fault(db.session.get(Pile, a.pile_id), a.port, ALERT, False, load, None,
                        now, now, rules=alert_rules)


def _stop_newest(alley: Alley, sessions: list, load: float, limit: int, now: datetime,
                 language: str) -> list:
    """Stop the newest sessions not yet asked, until the rest is under the limit; each
    holder is told. Returns (pile, session) of those asked to stop."""
    running = [s for s in sessions if s.guard_stop_at is None]
    running.sort(key=lambda s: (s.started_at or s.created_at, s.id), reverse=True)
    rest = load - sum(s.last_power_w or 0.0 for s in sessions if s.guard_stop_at is not None)
    stopped = []
    for s in running:
        if rest <= limit:
            break
        pile = db.session.get(Pile, s.pile_id)
        charging_sessions.ask_stop(pile, s, LimitStop.OVER_BUDGET, now)
        rest -= s.last_power_w or 0.0
        stopped.append((pile, s))
        acc = active_holder(alley.id, s.card)
        if acc is not None:
            # An overloaded supply is an electrical-safety stop: no quiet hours. Kept as
            # the account's reminder `budget:<session>` (told once).
            messages.tell_once(f"budget:{s.id}", acc, NOTICE_STOP, {
                "alley": alley.name, "pile": pile.label or pile.id, "port": s.port,
                "time": now.astimezone(alleys.zone(alley))
                .strftime("%Y-%m-%d %H:%M")}, now, Paging(language=language), safety=True)
    return stopped


def check(now: datetime, rule: BudgetRule, alert_rules: AlertRules,
          language: str = "zh") -> dict:
    """`check_alley` for every alley with a feeder limit or a pile with its own.
    Commits."""
    out = {"stop_asked": 0, "alleys": 0}
    with_pile_limit = select(Pile.alley_id).where(Pile.power_limit_w.is_not(None))
    alley_ids = list(db.session.scalars(select(Alley.id).where(
        Alley.feeder_limit_w.is_not(None) | Alley.id.in_(with_pile_limit)).order_by(Alley.id)))
    for alley_id in alley_ids:
        alley = db.session.get(Alley, alley_id)
        out["stop_asked"] += check_alley(alley, now, rule, alert_rules, language)
        out["alleys"] += 1
        db.session.commit()
    return out
