"""The load above the feeder's limit anyway (piles without `authorize`, a fire pump on
the same supply, a wrong limit): once it has stayed over for more than
`over_readings` readings (of `reading_s` each), the backend stops the newest sessions
until the load is under the limit, tells their holders, and raises an `over_budget`
alert for staff (cleared when the load is back under). Every check also keeps a
point of the feeder's load curve. `check` commits (one transaction per alley)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from ...constants import OPEN_ALERT, CommandAction, LimitStop
from ...extensions import db
from ...models import Alert, Alley, FeederState, Pile
from ...settings import AlertRules, BudgetRule
from ..alerts import lifecycle as alerts
from ..billing import reminders
from ..billing.accounts import active_holder
from ..devices import alleys, commands
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
    """Sample the alley's load, and stop sessions when it stayed over the limit (see
    the module docstring). Returns how many were asked to stop. No commit."""
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
    if limit is None or load <= limit:
        st.over_since, st.over_readings = None, 0
        _clear(alley, load, now, alert_rules)
        return 0
    if st.over_since is None:
        st.over_since = now
    held = (now - st.over_since).total_seconds()
    st.over_readings = int(held // rule.reading_s) + 1
    if held <= rule.over_readings * rule.reading_s:
        return 0
    stopped = _stop_newest(alley, sessions, load, limit, now, language)
    if stopped:
        pile = stopped[0][0]
        alerts.on_fault(pile, None, ALERT, True, round(load),
                        f"load {round(load)} W over the feeder limit {limit} W for "
                        f"{int(held)} s: {len(stopped)} session(s) stopped", now, now,
                        rules=alert_rules)
        st.last_stop_at = now
        log.warning("alley %s: load %.0f W over %d W for %d s; %d session(s) stopped",
                    alley.slug, load, limit, held, len(stopped))
    # The next stop waits for fresh readings again.
    st.over_since = now
    return len(stopped)


def _clear(alley: Alley, load: float, now: datetime, alert_rules: AlertRules) -> None:
    """Under the limit: the alley's open over-limit alerts clear."""
    for a in _open_alerts(alley):
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
        commands.create(pile, s.port, CommandAction.STOP, now)
        s.guard_stop_at, s.guard_reason = now, LimitStop.OVER_BUDGET
        rest -= s.last_power_w or 0.0
        stopped.append((pile, s))
        acc = active_holder(alley.id, s.card)
        if acc is not None:
            reminders.queue_to_account(acc, NOTICE_STOP, {
                "alley": alley.name, "pile": pile.label or pile.id, "port": s.port,
                "time": now.astimezone(alleys.zone(alley))
                .strftime("%Y-%m-%d %H:%M")}, language, now,
                safety=True)  # an overloaded supply is an electrical-safety stop: no quiet hours
    return stopped


def check(now: datetime, rule: BudgetRule, alert_rules: AlertRules,
          language: str = "zh") -> dict:
    """`check_alley` for every alley with a feeder limit or sessions charging. Commits."""
    out = {"stop_asked": 0, "alleys": 0}
    alley_ids = list(db.session.scalars(select(Alley.id).where(
        Alley.feeder_limit_w.is_not(None)).order_by(Alley.id)))
    for alley_id in alley_ids:
        alley = db.session.get(Alley, alley_id)
        out["stop_asked"] += check_alley(alley, now, rule, alert_rules, language)
        out["alleys"] += 1
        db.session.commit()
    return out
