"""The automatic cut-off of a critical fault, tracked until the pile confirms it.

A cut-off is a state on its alert (`Alert.cutoff`), never a hope:

    none → pending → confirmed
              ↓  ↖ (the pile complies later, or staff try again)
          unconfirmed

- **pending**: the commands were asked (a `stop` per port and a `disable` of the port,
  or for fire codes of the whole pile) and are being sent.
- **confirmed**: the pile acked a `disable` of the target `accepted`, and no port of
  the target reports `charging` (for fire codes: no port of the pile, and the pile's
  own disable accepted). An ack alone is not enough, nor is a queued command.
- **unconfirmed**: no confirmation within CUTOFF_CONFIRM_S. Escalated at once to
  level-2 contacts and by SMS to the alley's contacts with a phone; shown in red at
  the top of the staff desk with one "try again" button. Still pressed while the
  alarm lasts, and confirmed if the pile complies later.

While the alarm is open and the cut-off is not confirmed, the `cutoff-track` job sends
again: a command with no answer goes out again under the same id (the pile acts on an
id once and acks it again, so a re-send is idempotent), and a port that still reports
`charging` after its stop was answered gets a new `stop`. Rounds come every
CUTOFF_RETRY_BASE_S, doubling up to CUTOFF_RETRY_MAX_S, and at once when the pile
reconnects (`on_pile_back`, from its boot or `online 1`).

The cut-off's commands are those of the alert that no person created
(`Command.alert_id` = the alert, `created_by` empty).

Imports commands, notify and scope; alerts (the lifecycle) imports this module, never
the other way round.

Who commits: `request`, `evaluate`, `on_ack`, `on_pile_changed` and `on_pile_back` are called
inside the ingest's batch (add and flush only); `track` (job) and `retry` (staff)
commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from ...constants import (
    FIRE_CODES,
    OPEN_ALERT,
    CommandAction,
    CommandStatus,
    CutoffState,
    NotificationStatus,
    PortStatus,
)
from ...extensions import db
from ...models import Alert, Command, Contact, Notification, Pile, User
from ...settings import AlertRules, CutoffRules
from .. import scope
from ..devices import commands
from ..errors import Conflict, NotFound
from . import notify

log = logging.getLogger(__name__)

NONE, PENDING = CutoffState.NONE, CutoffState.PENDING
CONFIRMED, UNCONFIRMED = CutoffState.CONFIRMED, CutoffState.UNCONFIRMED
TRACKED = (PENDING, UNCONFIRMED)


def target_port(alert: Alert) -> int | None:
    """The port the cut-off covers, or None for the whole pile (fire codes)."""
    return None if alert.code in FIRE_CODES else alert.port


def target_ports(alert: Alert, pile: Pile) -> list:
    port = target_port(alert)
    return [p for p in pile.ports if port is None or p.number == port]


def commands_of(alert: Alert) -> list[Command]:
    """The cut-off's own commands, oldest first."""
    stmt = (select(Command).where(Command.alert_id == alert.id, Command.created_by.is_(None))
            .order_by(Command.created_at, Command.id))
    return list(db.session.scalars(stmt))


def _backoff(tries: int, rules: CutoffRules) -> timedelta:
    return timedelta(seconds=min(rules.retry_base_s * 2 ** max(0, tries - 1), rules.retry_max_s))


def request(alert: Alert, pile: Pile, now: datetime, rules: CutoffRules) -> list[Command]:
    """Ask for the cut-off of a new critical alert: stop + disable the port, or for a
    fire code stop every port and disable the pile. Does not commit."""
    port = target_port(alert)
    ports = [port] if port is not None else [p.number for p in pile.ports]
    sent = [commands.create(pile, n, CommandAction.STOP, now, alert=alert) for n in ports]
    sent.append(commands.create(pile, port, CommandAction.DISABLE, now, alert=alert))
    alert.cutoff = PENDING
    alert.cutoff_requested_at = now
    alert.cutoff_confirmed_at = alert.cutoff_unconfirmed_at = None
    alert.cutoff_tries = 1
    alert.cutoff_next_try_at = now + _backoff(1, rules)
    alert.record("cutoff_sent", now, data={"commands": [commands.brief(c) for c in sent]})
    if (watched := db.session.info.get(WATCH)) is not None:
        watched.setdefault(pile.id, set()).add(alert)
    return sent


def is_confirmed(alert: Alert, pile: Pile, cmds: list[Command]) -> bool:
    """The pile accepted a disable of the target, and no port of it reports charging."""
    port = target_port(alert)
    disabled = any(c.action == CommandAction.DISABLE and c.port == port and c.status == CommandStatus.ACCEPTED
                   for c in cmds)
    return disabled and not any(p.status == PortStatus.CHARGING for p in target_ports(alert, pile))


def evaluate(alert: Alert, now: datetime) -> str:
    """Move a tracked cut-off to `confirmed` when the pile has done it. Does not commit."""
    if alert.cutoff not in TRACKED:
        return alert.cutoff
    pile = alert.pile
    if is_confirmed(alert, pile, commands_of(alert)):
        late = alert.cutoff == UNCONFIRMED
        alert.cutoff = CONFIRMED
        alert.cutoff_confirmed_at = now
        alert.cutoff_next_try_at = None
        secs = (now - alert.cutoff_requested_at).total_seconds() if alert.cutoff_requested_at else None
        alert.record("cutoff_confirmed", now, data={"late": late, "seconds": secs})
        log.info("cut-off of alert %s on %s confirmed after %.1f s", alert.id, pile.id, secs or 0)
    return alert.cutoff


def on_ack(pile: Pile, command_id: str, result: str, detail: str | None, now: datetime) -> None:
    """The pile answered a command: record it, and if it was a cut-off's, see whether
    the cut-off is now confirmed. Called by the ingest inside its batch. Does not commit."""
    cmd = commands.on_ack(pile, command_id, result, detail, now)
    if cmd is not None and cmd.alert_id is not None:
        alert = db.session.get(Alert, cmd.alert_id)
        if alert is not None:
            evaluate(alert, now)


# The ingest's batch's watch (`watch`): pile id → the alerts of the pile whose cut-off
# was tracked when the batch began, and those the batch requested since.
WATCH = "chargers.cutoff_watch"
# ... and the (alert, now) pairs it re-sent on a reconnect (`on_pile_back`).
BACK = "chargers.cutoff_back"


def watch(pile_ids) -> None:
    """An ingest batch begins on these piles: read their tracked cut-offs at once (one
    query), so a port that stops charging, asked at every stop, costs no query. The
    only way a cut-off becomes tracked inside a batch is `request`, which adds to the
    watch. Ended by `unwatch` (the batch's commit or rollback)."""
    found: dict[str, set] = {pid: set() for pid in pile_ids}
    if found:
        with db.session.no_autoflush:
            for a in db.session.scalars(select(Alert).where(
                    Alert.pile_id.in_(sorted(found)), Alert.cutoff.in_(TRACKED))):
                found.setdefault(a.pile_id, set()).add(a)
    db.session.info[WATCH] = found


def unwatch() -> None:
    """The batch ended (committed or rolled back): its watch and its reconnect
    re-sends are forgotten (a batch retried one message at a time, with the same
    `now`, re-sends again what the failed attempt did not commit)."""
    db.session.info.pop(WATCH, None)
    db.session.info.pop(BACK, None)


def tracked_of_pile(pile_id: str) -> list[Alert]:
    """The pile's alerts whose cut-off is not confirmed yet. Asked whenever a port of a
    pile stops charging. Inside the ingest's batch, from its watch; elsewhere read
    without an autoflush (which wrote the whole batch so far, one row at a time: most
    of the ingest's statements), with those the session made or changed as they
    stand."""
    watched = db.session.info.get(WATCH, {}).get(pile_id)
    if watched is not None:
        found = set(watched)
    else:
        stmt = select(Alert).where(Alert.pile_id == pile_id, Alert.cutoff.in_(TRACKED))
        with db.session.no_autoflush:
            found = set(db.session.scalars(stmt))
        found.update(a for a in (*db.session.new, *db.session.dirty)
                     if isinstance(a, Alert) and a.pile_id == pile_id)
    tracked = [a for a in found if a.cutoff in TRACKED]
    if any(a.id is None for a in tracked):
        # One the batch just made: written now, so that its commands can be found by
        # its id (`commands_of`); rare, where the autoflush came at every stop.
        db.session.flush()
    return sorted(tracked, key=lambda a: a.id)


def on_pile_changed(pile: Pile, now: datetime) -> None:
    """A port of the pile changed state or the pile answered a command: confirm what
    is now done. Called by the ingest inside its batch. Does not commit."""
    for alert in tracked_of_pile(pile.id):
        evaluate(alert, now)


def on_pile_back(pile: Pile, now: datetime, rules: CutoffRules) -> None:
    """The pile (re)connected: what it has not confirmed goes out again at once.
    Does not commit."""
    done = db.session.info.setdefault(BACK, set())  # boot and online 1 in one batch
    for alert in tracked_of_pile(pile.id):
        if alert.status in OPEN_ALERT and (alert.id, now) not in done:
            done.add((alert.id, now))
            _resend(alert, pile, now, "reconnect", rules)


def _resend(alert: Alert, pile: Pile, now: datetime, reason: str, rules: CutoffRules) -> int:
    """One round: unanswered commands go out again under their id; a port still
    charging whose stop was answered gets a new stop; a refused disable is asked
    anew. Does not commit."""
    cmds = commands_of(alert)
    port = target_port(alert)
    again: list[Command] = []
    for c in cmds:
        if c.status in (CommandStatus.SENT, CommandStatus.TIMEOUT):
            c.status = CommandStatus.PENDING  # dispatch publishes it again, same id
            again.append(c)
        elif c.status == CommandStatus.PENDING:
            again.append(c)
    disables = [c for c in cmds if c.action == CommandAction.DISABLE and c.port == port]
    if not any(c.status in (CommandStatus.ACCEPTED, CommandStatus.PENDING) for c in disables):
        again.append(commands.create(pile, port, CommandAction.DISABLE, now, alert=alert))
    for p in target_ports(alert, pile):
        if p.status != PortStatus.CHARGING:
            continue
        stops = [c for c in cmds if c.action == CommandAction.STOP and c.port == p.number]
        if not any(c.status == CommandStatus.PENDING for c in stops):
            again.append(commands.create(pile, p.number, CommandAction.STOP, now, alert=alert))
    alert.cutoff_tries = (alert.cutoff_tries or 0) + 1
    alert.cutoff_next_try_at = now + _backoff(alert.cutoff_tries, rules)
    if again:
        commands.command_created.send(again[0])  # the worker dispatches after commit
        alert.record("cutoff_resent", now, data={"reason": reason, "try": alert.cutoff_tries,
                                                 "commands": [commands.brief(c) for c in again]})
    db.session.flush()
    return len(again)


def _escalate(alert: Alert, now: datetime, rules: AlertRules) -> None:
    """Not confirmed in time: level 2 hears of it at once (with level 1), and every
    contact of the alley with a phone gets an SMS. Does not commit."""
    alert.cutoff = UNCONFIRMED
    alert.cutoff_unconfirmed_at = now
    notify.queue_for_alert(alert, level=(1, 2), reason="cutoff", now=now,
                           paging=rules.paging)
    phones = sorted({c.phone for c in db.session.scalars(
        select(Contact).where(Contact.alley_id == alert.pile.alley_id)) if c.phone})
    pile = alert.pile
    params = {"alley": pile.alley.name, "pile": pile.label,
              "port": str(alert.port or ""), "code": alert.code}
    for phone in phones:
        db.session.add(Notification(alert_id=alert.id, contact_id=None, reason="cutoff",
                                    channel="sms", target=phone, subject="cutoff",
                                    body="", payload={"template": "cutoff", "params": params},
                                    status=NotificationStatus.PENDING, attempts=0, next_attempt_at=now,
                                    created_at=now))
    alert.record("cutoff_unconfirmed", now, data={"seconds": rules.cutoff.confirm_s,
                                                  "sms": len(phones)})
    log.warning("cut-off of alert %s on %s NOT confirmed within %d s: escalated",
                alert.id, pile.id, rules.cutoff.confirm_s)


def track(now: datetime, rules: AlertRules) -> tuple[int, int, int]:
    """The `cutoff-track` job: confirm what the pile has done, escalate what is late,
    and send again what is due while the alarm is open. Returns (confirmed,
    escalated, re-sent rounds). Commits."""
    confirmed = escalated = resent = 0
    # A cleared alert's unconfirmed cut-off stays as it was found (no more re-sends);
    # one still pending is still judged at its deadline.
    stmt = select(Alert).where((Alert.cutoff == PENDING)
                               | ((Alert.cutoff == UNCONFIRMED) & Alert.status.in_(OPEN_ALERT)))
    for alert in list(db.session.scalars(stmt)):
        if evaluate(alert, now) == CONFIRMED:
            confirmed += 1
            continue
        deadline = alert.cutoff_requested_at + timedelta(seconds=rules.cutoff.confirm_s)
        if alert.cutoff == PENDING and now >= deadline:
            _escalate(alert, now, rules)
            escalated += 1
        if (alert.status in OPEN_ALERT and alert.cutoff_next_try_at is not None
                and now >= alert.cutoff_next_try_at):
            _resend(alert, alert.pile, now, "retry", rules.cutoff)
            resent += 1
    db.session.commit()
    return confirmed, escalated, resent


def retry(user: User, alert_id: int, now: datetime, rules: AlertRules) -> Alert:
    """Staff press "try again" on a cut-off that is not confirmed: it is pending again
    with a new deadline, and everything unconfirmed goes out now. Commits."""
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert.not_found")
    scope.check_pile(user, alert.pile)
    if alert.cutoff not in TRACKED:
        raise Conflict("cutoff.not_retryable")
    alert.cutoff = PENDING
    alert.cutoff_requested_at = now
    alert.cutoff_unconfirmed_at = None
    alert.cutoff_tries = 0
    alert.record("cutoff_retry", now, user)
    _resend(alert, alert.pile, now, "staff", rules.cutoff)
    db.session.commit()
    return alert


def unconfirmed(user: User | None) -> list[Alert]:
    """Cut-offs in the user's alleys that the pile has not confirmed in time: for the
    top of the staff desk."""
    stmt = (select(Alert).join(Pile, Alert.pile_id == Pile.id)
            .where(Alert.cutoff == UNCONFIRMED, Alert.status.in_(OPEN_ALERT)))
    stmt = scope.limit_to_alleys(stmt, user, Pile.alley_id)
    return list(db.session.scalars(stmt.order_by(Alert.raised_at.desc())))
