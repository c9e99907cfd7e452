"""Alerts for staff, raised from fault events and offline piles.

Lifecycle (ThingsBoard's model), keyed by (pile, port, code):
active (unacknowledged) → acknowledged → cleared (by the pile's `active: false`, by
the pile coming back online for `offline`, or resolved by staff with a note). A
repeat of an open alert bumps `count` and `last_seen_at`. Every change writes an
AlertEvent (who, when, what).

Paging: a critical alert notifies level-1 contacts at once; any other alert only once
it has stayed open past ALERT_DEBOUNCE_S (job `alerts-notify`), so a flap (raised and
cleared within the debounce) stays in the history and pages nobody.

Who commits: `record_fault` and the functions named `on_*` are called by the MQTT
ingest inside its batch transaction: they add and flush, and never commit (the batch
commits). `raise_offline_alerts`, `notify_debounced`, `page_unacknowledged` (jobs) and
`acknowledge`, `resolve` (staff) commit. `list_*`, `get_*`, `count_*` only read.

Rules come in as a `settings.AlertRules` (built by the door from the config).
History entries are codes with data (see labels.EVENT_LABELS), never sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from ...constants import OPEN_ALERT, OPEN_FILTER, AlertStatus
from ...extensions import db
from ...models import Alert, Alley, FaultEvent, Pile, User, utcnow
from ...protocol.codes import FAULT_CODES
from ...settings import AlertRules
from .. import scope
from ..errors import Conflict, Invalid, NotFound
from . import cutoff
from .severity import RANK, SEVERITIES, severity_for

STATUSES = tuple(AlertStatus)
OPEN = OPEN_ALERT
OFFLINE = "offline"
DATA_LOSS = "data_loss"
# Residents' problem reports (services/alerts/reports.py): alerts for staff, never a cut-off.
REPORT_CODES = ("report_burning", "report_no_power", "report_damaged", "report_other")
NO_CUTOFF = (OFFLINE, *REPORT_CODES)


def _find_alert(stmt) -> Alert | None:
    """One alert by `stmt`. Only unflushed alerts can change its answer, so the session
    is flushed only when some are pending: an autoflush of everything an ingest batch
    has touched (its piles and ports) before every lookup cost ~6 ms each."""
    session = db.session
    with session.no_autoflush:
        if any(isinstance(o, Alert) for o in (*session.new, *session.dirty)):
            session.flush()
        return session.scalar(stmt.limit(1))


def _open_alert(pile_id: str, port: int | None, code: str) -> Alert | None:
    stmt = select(Alert).where(Alert.pile_id == pile_id, Alert.code == code,
                               Alert.status.in_(OPEN))
    stmt = stmt.where(Alert.port.is_(None) if port is None else Alert.port == port)
    return _find_alert(stmt.order_by(Alert.id.desc()))


def _last_cleared(pile_id: str, port: int | None, code: str) -> Alert | None:
    stmt = select(Alert).where(Alert.pile_id == pile_id, Alert.code == code,
                               Alert.status == AlertStatus.CLEARED)
    stmt = stmt.where(Alert.port.is_(None) if port is None else Alert.port == port)
    return _find_alert(stmt.order_by(Alert.cleared_at.desc()))


def _open(pile: Pile, port: int | None, code: str, value: float | None, detail: str | None,
          at: datetime, now: datetime, rules: AlertRules, data: dict | None = None) -> Alert:
    """A new alert; a critical one pages at once and, unless the alley says no,
    cuts the port (or the pile) off. Does not commit."""
    from . import notify

    alert = Alert(pile_id=pile.id, pile=pile, port=port, code=code,
                  severity=severity_for(code, rules.severity), status=AlertStatus.ACTIVE, raised_at=at,
                  last_seen_at=at, count=1, value=value)
    db.session.add(alert)
    alert.record("raised", now, note=detail, data=data)
    db.session.flush()
    if alert.severity == "critical":
        if pile.alley.auto_cutoff and code not in NO_CUTOFF:
            # Fire first: smoke or heat on one port makes the whole pile unsafe, so
            # the cut-off covers every port and the pile; tracked until confirmed.
            cutoff.request(alert, pile, now, rules.cutoff)
        notify.queue_for_alert(alert, level=1, reason="new", now=now, paging=rules.paging)
    db.session.flush()
    return alert


def record_fault(pile: Pile, *, port: int | None, code: str, active: bool, value: float | None,
                 detail: str | None, at: datetime, time_source: str, received_at: datetime,
                 now: datetime, rules: AlertRules) -> FaultEvent:
    """Keep the pile's fault report as a record, then raise or clear its alert.
    Called by the ingest inside its batch: no commit."""
    event = FaultEvent(pile_id=pile.id, port=port, code=code, active=active, value=value,
                       detail=detail, ts=at, received_at=received_at, time_source=time_source)
    db.session.add(event)
    on_fault(pile, port, code, active, value, detail, at, now, rules=rules)
    return event


def on_fault(pile: Pile, port: int | None, code: str, active: bool, value: float | None,
             detail: str | None, at: datetime, now: datetime, *, rules: AlertRules,
             data: dict | None = None) -> None:
    """A pile reported a fault raised (`active`) or cleared, at `at` (already chosen
    between pile time and arrival time). `data`: the raise's structured parameters
    (the backend's own alerts about a session carry `session`). Does not commit."""
    alert = _open_alert(pile.id, port, code)
    if active:
        if alert is not None:
            alert.count += 1
            if at > alert.last_seen_at:
                alert.last_seen_at = at
            if value is not None:
                alert.value = value
            alert.record("repeated", now, note=detail, data=data)
            db.session.flush()
            return
        last = _last_cleared(pile.id, port, code)
        if (last is not None and last.cleared_by is None and last.cleared_at is not None
                and at < last.cleared_at
                and severity_for(code, rules.severity) != "critical"):
            # A raise older than the pile's own last clear arrived late: that fault is
            # over. Only compared with a clear on the pile's clock (not a staff
            # resolve, which is server time), and never for fire risks: a false
            # alarm there is better than a missed one.
            last.record("stale_raise_ignored", now, note=detail,
                        data={"raised_at": at.isoformat()})
            db.session.flush()
            return
        _open(pile, port, code, value, detail, at, now, rules, data)
        return
    if alert is None:
        return  # nothing open to clear (a duplicate clear, or a fault we never saw)
    if at < alert.last_seen_at:
        # An old clear overtaken by a newer raise: the fault is still there.
        alert.record("stale_clear_ignored", now, note=detail,
                     data={"cleared_at": at.isoformat()})
        db.session.flush()
        return
    _clear(alert, at, now, "cleared_by_device", detail, rules)


def _clear(alert: Alert, at: datetime, now: datetime, action: str, note: str | None,
           rules: AlertRules, data: dict | None = None) -> None:
    """Close an alert the device (or the pile's return) cleared; a non-critical one
    cleared within the debounce and never paged is a flap. Does not commit."""
    debounce = timedelta(seconds=rules.debounce_s)
    alert.status = AlertStatus.CLEARED
    alert.cleared_at = at
    alert.record(action, now, note=note, data=data)
    if alert.severity != "critical" and alert.notified_at is None and at - alert.raised_at < debounce:
        alert.flapped = True
        alert.record("flap", now, data={"debounce_s": rules.debounce_s})
    db.session.flush()


def on_data_loss(pile: Pile, missing: int, now: datetime, *, rules: AlertRules) -> None:
    """The pile's `seq` jumped: `missing` messages possibly lost between pile and
    backend (broker queue overflow, a crash before autosave). One open alert per pile;
    later gaps bump it. Staff resolve it once they have looked. Does not commit."""
    alert = _open_alert(pile.id, None, DATA_LOSS)
    data = {"missing": missing}
    if alert is not None:
        alert.count += 1
        alert.last_seen_at = now
        alert.value = (alert.value or 0) + missing
        alert.record("repeated", now, data=data)
        db.session.flush()
        return
    _open(pile, None, DATA_LOSS, float(missing), None, now, now, rules, data)


def on_report(pile: Pile, port: int | None, code: str, now: datetime, *,
              rules: AlertRules) -> Alert:
    """A resident reported a problem (code one of REPORT_CODES): open its alert, or bump
    the open one. A critical report (a burning smell) pages at once; no report cuts
    power (NO_CUTOFF). Does not commit."""
    alert = _open_alert(pile.id, port, code)
    if alert is not None:
        alert.count += 1
        alert.last_seen_at = max(alert.last_seen_at, now)
        alert.record("repeated", now)
        db.session.flush()
        return alert
    return _open(pile, port, code, None, None, now, now, rules)


def on_data_recovered(pile: Pile, now: datetime, *, rules: AlertRules) -> None:
    """The messages a `data_loss` alert missed all arrived late after all: clear it.
    Does not commit."""
    alert = _open_alert(pile.id, None, DATA_LOSS)
    if alert is not None:
        _clear(alert, now, now, "cleared_filled", None, rules)


def on_pile_online(pile: Pile, now: datetime, *, rules: AlertRules) -> None:
    """The pile came (back) online: clear its offline alert. Does not commit."""
    alert = _open_alert(pile.id, None, OFFLINE)
    if alert is not None:
        _clear(alert, now, now, "cleared_online", None, rules)


def on_pile_offline(pile: Pile, now: datetime) -> None:
    """The pile went offline (last will, retained 0, or missed heartbeats). Does not commit.

    Nothing happens at once: the `alerts-offline` job raises an alert only when the
    pile stays away past OFFLINE_GRACE_S, so a quick reconnect pages nobody.
    """


def raise_offline_alerts(now: datetime | None, rules: AlertRules) -> int:
    """Raise an `offline` alert for every enabled pile offline past the grace period,
    counted from when it went offline (`online_since` of the offline state), else from
    when it was last heard. Piles never heard are not installed yet: skipped. Commits."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=rules.offline_grace_s)
    offline_since = func.coalesce(Pile.online_since, Pile.last_seen_at)
    stmt = select(Pile).where(Pile.online.is_(False), Pile.enabled.is_(True),
                              Pile.last_seen_at.is_not(None), offline_since <= cutoff)
    raised = 0
    for pile in db.session.scalars(stmt):
        if _open_alert(pile.id, None, OFFLINE) is not None:
            continue
        _open(pile, None, OFFLINE, None, None, now, now, rules,
              {"last_heard": pile.last_seen_at.isoformat()})
        raised += 1
    db.session.commit()
    return raised


def notify_debounced(now: datetime | None, rules: AlertRules) -> int:
    """Page level-1 contacts of every unacknowledged alert that has stayed open past
    the debounce and has not paged yet (critical ones paged when raised). Commits."""
    from . import notify

    now = now or utcnow()
    debounce = timedelta(seconds=rules.debounce_s)
    stmt = select(Alert).where(Alert.status == AlertStatus.ACTIVE, Alert.notified_at.is_(None),
                               Alert.flapped.is_(False), Alert.raised_at <= now - debounce)
    done = 0
    for alert in db.session.scalars(stmt):
        notify.queue_for_alert(alert, level=1, reason="new", now=now, paging=rules.paging)
        done += 1
    db.session.commit()
    return done


def page_unacknowledged(now: datetime | None, rules: AlertRules) -> tuple[int, int]:
    """For critical alerts nobody acknowledged: re-send to level 1 every
    ALERT_RESEND_MINUTES, and escalate to level 2 once ALERT_ESCALATE_MINUTES have
    passed since the first page. Returns (re-sent, escalated). Commits."""
    from . import notify

    now = now or utcnow()
    resend = timedelta(minutes=rules.resend_minutes)
    escalate = timedelta(minutes=rules.escalate_minutes)
    stmt = select(Alert).where(Alert.status == AlertStatus.ACTIVE, Alert.severity == "critical",
                               Alert.notified_at.is_not(None))
    resent = escalated = 0
    for alert in db.session.scalars(stmt):
        if now - (alert.last_notified_at or alert.notified_at) >= resend:
            # Once escalated, level 2 keeps hearing of it too.
            levels = (1, 2) if alert.escalated_at else (1,)
            notify.queue_for_alert(alert, level=levels, reason="resend", now=now,
                                   paging=rules.paging)
            resent += 1
        if alert.escalated_at is None and now - alert.notified_at >= escalate:
            notify.queue_for_alert(alert, level=2, reason="escalation", now=now,
                                   paging=rules.paging)
            escalated += 1
    db.session.commit()
    return resent, escalated


# --- staff: read, acknowledge, resolve ---------------------------------------------


@dataclass
class AlertFilter:
    """What a list of alerts is narrowed to (None = any). `status` may also be
    `open` (active or acknowledged)."""

    status: str | None = None
    alley: str | None = None  # slug
    severity: str | None = None
    pile: str | None = None


def _check_filter(f: AlertFilter) -> None:
    if f.status is not None and f.status not in (*STATUSES, OPEN_FILTER):
        raise Invalid("alert.status_filter")
    if f.severity is not None and f.severity not in SEVERITIES:
        raise Invalid("alert.severity_filter", choices=", ".join(SEVERITIES))


def list_alerts(user: User | None, f: AlertFilter | None = None, *, triage: bool = False,
                limit: int | None = 100, offset: int = 0) -> list[Alert]:
    """Alerts in the user's alleys: newest first, or, with `triage`, open before
    cleared, unacknowledged first, critical on top, then newest."""
    f = f or AlertFilter()
    _check_filter(f)
    stmt = (select(Alert).join(Pile, Alert.pile_id == Pile.id)
            .options(selectinload(Alert.pile).selectinload(Pile.alley),
                     selectinload(Alert.acknowledger), selectinload(Alert.clearer)))
    stmt = scope.limit_to_alleys(stmt, user, Pile.alley_id)
    if f.status == OPEN_FILTER:
        stmt = stmt.where(Alert.status.in_(OPEN))
    elif f.status:
        stmt = stmt.where(Alert.status == f.status)
    if f.severity:
        stmt = stmt.where(Alert.severity == f.severity)
    if f.pile:
        stmt = stmt.where(Alert.pile_id == f.pile)
    if f.alley:
        stmt = stmt.join(Alley, Pile.alley_id == Alley.id).where(Alley.slug == f.alley)
    if triage:
        status_rank = case({AlertStatus.ACTIVE: 0, AlertStatus.ACKNOWLEDGED: 1}, value=Alert.status, else_=2)
        sev_rank = case(RANK, value=Alert.severity, else_=len(RANK))
        stmt = stmt.order_by(status_rank, sev_rank, Alert.raised_at.desc(), Alert.id.desc())
    else:
        stmt = stmt.order_by(Alert.raised_at.desc(), Alert.id.desc())
    return list(db.session.scalars(stmt.limit(limit).offset(offset)))


def open_alerts_by(user: User | None, key: Callable[[Alert], object], *,
                   alley: str | None = None, pile: str | None = None) -> dict:
    """Open alerts in scope (triage order), grouped by `key(alert)`: for the badges
    that lead from alleys, piles and ports to their alerts."""
    out: dict = {}
    for a in list_alerts(user, AlertFilter(status=OPEN_FILTER, alley=alley, pile=pile),
                         triage=True, limit=None):
        out.setdefault(key(a), []).append(a)
    return out


def count_open(user: User | None) -> dict[str, int]:
    """Open alerts in scope by severity, plus `unacknowledged`: for badges."""
    out = {s: 0 for s in SEVERITIES} | {"unacknowledged": 0}
    for alert in list_alerts(user, AlertFilter(status=OPEN_FILTER), limit=None):
        out[alert.severity] = out.get(alert.severity, 0) + 1
        out["unacknowledged"] += alert.status == AlertStatus.ACTIVE
    return out


def get_alert(user: User | None, alert_id: int) -> Alert:
    """One alert within the user's scope (404 outside it)."""
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert.not_found")
    scope.check_pile(user, alert.pile)
    return alert


def acknowledge(user: User, alert_id: int, note: str | None = None,
                now: datetime | None = None) -> Alert:
    """Someone is on it: stops re-sending and escalation. Acknowledging twice changes
    nothing; a cleared alert keeps its status but records who saw it. Commits."""
    now = now or utcnow()
    alert = get_alert(user, alert_id)
    if alert.acknowledged_at is not None:
        return alert
    alert.acknowledged_at = now
    alert.acknowledged_by = user.id
    if alert.status == AlertStatus.ACTIVE:
        alert.status = AlertStatus.ACKNOWLEDGED
    alert.record("acknowledged", now, user, (note or "").strip() or None)
    db.session.commit()
    return alert


def still_reported(alert: Alert) -> bool:
    """The pile itself still reports this fault: an open device-fault alert the pile
    has not cleared (resolving it then needs an explicit override). Not an alert the
    backend raised about a session (its `overload`): no pile will clear that one."""
    return alert.status in OPEN and alert.code in FAULT_CODES and about_session(alert) is None


def withdraw_about_session(pile: Pile, port: int | None, code: str, session_id: int,
                           data: dict, at: datetime, now: datetime, rules: AlertRules) -> bool:
    """The backend withdraws its own alert about a session that proved not to be what
    it looked like (graded mid for `no_taper`, then it tapered to full): cleared, with
    why (`data`), when it is open and its newest raise is about that session. Does not
    commit."""
    alert = _open_alert(pile.id, port, code)
    if alert is None or about_session(alert) != session_id:
        return False
    _clear(alert, at, now, "withdrawn", None, rules, data)
    return True


def about_session(alert: Alert) -> int | None:
    """The charging session the backend raised this alert about (its limits and risk
    grade, services/safety/limits.py), the newest when it was raised again; None: an
    alert of the pile's own, or of anything else."""
    for event in reversed(alert.events):
        if (event.action in ("raised", "repeated") and event.data
                and event.data.get("session") is not None):
            return int(event.data["session"])
    return None


def resolve(user: User, alert_id: int, note: str, now: datetime | None = None, *,
            override: bool = False) -> Alert:
    """Staff close the alert with a note (what was found, what was done). While the pile
    still reports the fault, only with `override` (the note is the reason). Commits."""
    now = now or utcnow()
    note = (note or "").strip()
    if not note:
        raise Invalid("alert.note_required")
    alert = get_alert(user, alert_id)
    if alert.status == AlertStatus.CLEARED:
        raise Conflict("alert.already_cleared")
    if still_reported(alert) and not override:
        raise Conflict("alert.still_reported")
    still_reported_before = still_reported(alert)
    alert.status = AlertStatus.CLEARED
    alert.cleared_at = now
    alert.cleared_by = user.id
    alert.note = note
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now, user.id
    alert.record("resolved_override" if still_reported_before else "resolved", now, user, note)
    db.session.commit()
    return alert
