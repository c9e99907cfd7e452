"""Commands to piles on their `cmd` topic, tracked until acked.

A command is written `pending`; the `commands-dispatch` job publishes it (QoS 1) on
`{prefix}/{pile}/cmd` and marks it `sent`; the pile's `ack` makes it `accepted` or
`rejected`; no ack within COMMAND_TIMEOUT_S makes it `timeout` (job
`commands-timeout`). An accepted enable/disable is mirrored on Port.enabled /
Pile.enabled, so our records follow what the pile actually did.

Who commits: `create` and `on_ack` (the ingest's batch) add and flush only;
`issue` (staff), `dispatch_pending` and `expire` (jobs) commit. Publishing and timeouts
follow a `settings.CommandRules` passed in by the door. The answer to an `authorize`
(services/budget) goes out the same way but is not acked by the pile: it stays `sent`
(it was published) and never times out.

A command's outcome is a code (`Command.outcome`: no_ack, unsent, late) beside the
pile's own words (`Command.pile_detail`); its entries in an alert's history are codes
with the command as data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from blinker import Namespace
from sqlalchemy import select

from ...constants import AckResult, CommandAction, CommandStatus
from ...extensions import db
from ...models import Alert, Command, Pile, User, utcnow
from ...protocol.codes import ACK_RESULTS, COMMAND_ACTIONS
from ...settings import CommandRules
from .. import scope
from ..errors import Invalid, NotFound
from . import alleys, piles, ports

log = logging.getLogger(__name__)

ACTIONS = COMMAND_ACTIONS
FINAL = (CommandStatus.ACCEPTED, CommandStatus.REJECTED, CommandStatus.TIMEOUT)
# Sent only by services: a pile's configuration, the answer to its `authorize` (never
# acked: it stays `sent`), the start of a queued session (services/budget).
SERVICE_ACTIONS = (CommandAction.CONFIG, CommandAction.AUTHORIZE, CommandAction.START)


_signals = Namespace()
# Sent when a command row is added (before its commit): the worker then runs its
# dispatcher right after the batch commits instead of at the next tick, so a fire
# cut-off goes out in a fraction of a second (bench/alert_latency.py).
command_created = _signals.signal("command-created")


def _new_id() -> str:
    return "c-" + secrets.token_hex(8)


def brief(cmd: Command) -> dict:
    """The command as an alert-history entry's data."""
    return {"action": cmd.action, "port": cmd.port, "id": cmd.id}


def _check(pile: Pile, port: int | None, action: str) -> None:
    if action not in ACTIONS and action not in SERVICE_ACTIONS:  # services only
        raise Invalid("command.action_unknown", choices=", ".join(ACTIONS))
    if action == "stop" and port is None:
        raise Invalid("command.stop_needs_port")
    if action == "reset" and port is not None:
        raise Invalid("command.reset_whole_pile")
    if port is not None and not 1 <= port <= pile.port_count:
        raise Invalid("command.port_range", port=port, n=pile.port_count)


def create(pile: Pile, port: int | None, action: str, now: datetime, *,
           alert: Alert | None = None, user: User | None = None,
           args: dict | None = None) -> Command:
    """A pending command (validated); `args` are the body's fields beyond id, ts,
    action and port (`config`: version, settings). Adds and flushes, does not commit."""
    _check(pile, port, action)
    cmd = Command(id=_new_id(), pile_id=pile.id, port=port, action=action, status=CommandStatus.PENDING,
                  created_at=now, created_by=user.id if user else None,
                  alert_id=alert.id if alert else None, args=args)
    db.session.add(cmd)
    db.session.flush()
    command_created.send(cmd)
    return cmd


def issue(user: User, pile_id: str, port: int | None, action: str, alert_id: int | None = None,
          now: datetime | None = None) -> Command:
    """Staff send a command to a pile in their scope (404 outside it); `alert_id`
    ties it to an alert of that pile, whose history records it. Commits."""
    now = now or utcnow()
    pile = piles.get_pile(user, pile_id)
    alert = None
    if alert_id is not None:
        alert = db.session.get(Alert, alert_id)
        if alert is None or alert.pile_id != pile.id:
            raise NotFound("alert.not_found")
    cmd = create(pile, port, action, now, alert=alert, user=user)
    if alert is not None:
        alert.record("command", now, user, data={"command": brief(cmd)})
    db.session.commit()
    return cmd


def get_command(user: User | None, command_id: str) -> Command:
    """One command of a pile in the user's scope."""
    cmd = db.session.get(Command, command_id)
    if cmd is None:
        raise NotFound("command.not_found")
    scope.check_pile(user, db.session.get(Pile, cmd.pile_id))
    return cmd


def list_commands(user: User | None, *, pile_id: str | None = None, alert_id: int | None = None,
                  limit: int = 20, offset: int = 0) -> list[Command]:
    """Recent commands in scope, newest first, of one pile (404 outside scope) and/or
    one alert; `offset` skips that many of the newest."""
    if pile_id is not None:
        scope.check_pile(user, db.session.get(Pile, pile_id))
    stmt = select(Command).join(Pile, Command.pile_id == Pile.id)
    stmt = scope.limit_to_alleys(stmt, user, Pile.alley_id)
    if pile_id is not None:
        stmt = stmt.where(Command.pile_id == pile_id)
    if alert_id is not None:
        stmt = stmt.where(Command.alert_id == alert_id)
    return list(db.session.scalars(stmt.order_by(Command.created_at.desc(), Command.id.desc())
                                    .limit(limit).offset(offset)))


def topic(pile_id: str, prefix: str) -> str:
    """The pile's command topic under the deployment's topic prefix."""
    return f"{prefix}/{pile_id}/cmd"


def payload(cmd: Command, pile: Pile, now: datetime, default_timezone: str = "UTC") -> dict:
    """The contract's command body; `ts` in the alley's zone, with its offset."""
    tz = alleys.zone(pile.alley, default_timezone)
    body = {"id": cmd.id, "ts": now.astimezone(tz).isoformat(timespec="seconds"),
            "action": cmd.action}
    if cmd.port is not None:
        body["port"] = cmd.port
    for k, v in (cmd.args or {}).items():
        body.setdefault(k, v)
    return body


def dispatch_pending(publish: Callable[[str, dict], None], now: datetime | None,
                     rules: CommandRules, limit: int = 100,
                     actions: tuple[str, ...] | None = None) -> int:
    """Publish pending commands (of `actions` only, when given), oldest first, marking
    each `sent` right after its publish. A failed publish stops the round; the rest
    wait for the next. Commits.

    At least once: a crash between publish and commit sends the same id again, and
    the pile answers a repeated id with the same ack.
    """
    sent = 0
    stmt = select(Command.id).where(Command.status == CommandStatus.PENDING).order_by(Command.created_at)
    if actions is not None:
        stmt = stmt.where(Command.action.in_(actions))
    for cmd_id in list(db.session.scalars(stmt.limit(limit))):
        # Several workers may dispatch at once (a fire cut-off is published by the
        # worker that applied the fault): each command is taken under a row lock
        # that the others skip (PostgreSQL), and only while still pending.
        cmd = db.session.scalar(
            select(Command).where(Command.id == cmd_id, Command.status == CommandStatus.PENDING)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))
        if cmd is None:
            db.session.rollback()
            continue
        now_ = now or utcnow()
        pile = db.session.get(Pile, cmd.pile_id)
        try:
            publish(topic(cmd.pile_id, rules.topic_prefix),
                    payload(cmd, pile, now_, rules.default_timezone))
        except Exception as exc:  # the broker is away: keep it pending
            log.warning("command %s to %s not published: %s", cmd.id, cmd.pile_id, exc)
            break
        cmd.status = CommandStatus.SENT
        cmd.sent_at = now_
        cmd.attempts = (cmd.attempts or 0) + 1
        db.session.commit()
        sent += 1
    return sent


def publish_answers(publish: Callable[[str, dict], None], now: datetime | None,
                    rules: CommandRules, limit: int = 200) -> int:
    """Publish the pending answers to piles' `authorize` at once: taken together under
    row locks the others skip, published, marked `sent`, one commit (a pile waits for
    them; dispatch_pending's commit per command is for commands a pile acks). A failed
    publish leaves the rest pending for the dispatch job. Commits."""
    rows = list(db.session.scalars(
        select(Command).where(Command.status == CommandStatus.PENDING,
                              Command.action == CommandAction.AUTHORIZE)
        .order_by(Command.created_at).limit(limit).with_for_update(skip_locked=True)))
    sent = 0
    piles_by_id: dict[str, Pile] = {}
    for cmd in rows:
        now_ = now or utcnow()
        pile = piles_by_id.get(cmd.pile_id) or db.session.get(Pile, cmd.pile_id)
        piles_by_id[cmd.pile_id] = pile
        try:
            publish(topic(cmd.pile_id, rules.topic_prefix),
                    payload(cmd, pile, now_, rules.default_timezone))
        except Exception as exc:  # the broker is away: the rest wait for the job
            log.warning("answer %s to %s not published: %s", cmd.id, cmd.pile_id, exc)
            break
        cmd.status, cmd.sent_at, cmd.attempts = CommandStatus.SENT, now_, (cmd.attempts or 0) + 1
        sent += 1
    db.session.commit()
    return sent


def expire(now: datetime | None, rules: CommandRules) -> int:
    """Sent commands with no ack after COMMAND_TIMEOUT_S, and commands that could not
    be published for COMMAND_UNSENT_TIMEOUT_S, become `timeout`. Commits."""
    now = now or utcnow()
    sent_before = now - timedelta(seconds=rules.timeout_s)
    made_before = now - timedelta(seconds=rules.unsent_timeout_s)
    stmt = select(Command).where(
        ((Command.status == CommandStatus.SENT) & (Command.sent_at <= sent_before)
         & (Command.action != CommandAction.AUTHORIZE))  # an answer is never acked
        | ((Command.status == CommandStatus.PENDING) & (Command.created_at <= made_before))
    )
    n = 0
    for cmd in db.session.scalars(stmt):
        cmd.outcome = "no_ack" if cmd.status == CommandStatus.SENT else "unsent"
        cmd.status = CommandStatus.TIMEOUT
        cmd.answered_at = now
        _note_on_alert(cmd, now)
        n += 1
    db.session.commit()
    return n


def _note_on_alert(cmd: Command, now: datetime) -> None:
    if cmd.alert_id is None:
        return
    alert = db.session.get(Alert, cmd.alert_id)
    if alert is not None:
        data = {"command": brief(cmd)}
        if cmd.outcome:
            data["outcome"] = cmd.outcome
        # The pile's own words, if it gave any, as it wrote them.
        alert.record(f"command_{cmd.status}", now, note=cmd.pile_detail, data=data)


def _mirror(cmd: Command, pile: Pile) -> None:
    """An accepted enable/disable: keep our records in step with the pile."""
    if cmd.action not in ("enable", "disable"):
        return
    enabled = cmd.action == "enable"
    if cmd.port is None:
        pile.enabled = enabled
        return
    port = ports.port_of(pile, cmd.port)
    if port is not None:
        port.enabled = enabled


def on_ack(pile: Pile, command_id: str, result: str, detail: str | None,
           now: datetime) -> Command | None:
    """The pile answered command `command_id` with `accepted` or `rejected`. Does not commit.

    Only the pile the command went to can answer it. A repeated ack changes nothing;
    a late ack after a timeout still records what the pile did.
    """
    if result not in ACK_RESULTS:
        return None
    cmd = db.session.get(Command, command_id)
    if cmd is None or cmd.pile_id != pile.id:
        log.warning("ack from %s for unknown command %r", pile.id, command_id)
        return None
    if cmd.status in ACK_RESULTS:
        return None
    late = cmd.status == CommandStatus.TIMEOUT
    cmd.status = result
    cmd.answered_at = now
    cmd.outcome = "late" if late else None
    cmd.pile_detail = detail or None
    if result == AckResult.ACCEPTED:
        _mirror(cmd, pile)
    _note_on_alert(cmd, now)
    db.session.flush()
    return cmd
