"""Why a charging session ended, as people are told it (port tiles, pile pages,
receipts): the pile's stop reason (protocol STOP_REASONS) made precise by what the
backend knows about who asked for a `remote` stop.

- `full` only when the pile said `full`: a session the system or staff stopped is
  never shown as full;
- `remote` (the backend asked): the balance guard's reason when it asked
  (`balance`, `unknown_card`, `monthly_hours`, `monthly_busy`); else `fault` when the
  stop was an alert's automatic cut-off, `staff` when a staff member sent it, and
  `remote` when no command of ours explains it;
- the pile's own `balance` (its session limit) also waits on a guard reason, if any;
- `assigned`: the guard stopped it for an unknown card, and staff later assigned the
  session to an account from the review list (the card was not "unknown" after all);
  a waived one still says `unknown_card`;
- every other pile reason as it is (`unplugged`, `user`, `fault`, `power_loss`,
  `timeout`); None when nothing is known (no session, or no reason yet).

`stop_asked`: what came of a stop the system asked for (asked is not done: an ack
alone leaves the session charging until the pile ends it).

The words live in labels.ENDING_LABELS and STOP_ASKED_LABELS. Read only: nothing here
writes or commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import func, or_, select

from ...extensions import db
from ...models import ChargingSession, Command, ReviewItem

ENDINGS = ("full", "unplugged", "user", "staff", "fault", "power_loss", "timeout", "remote",
           "balance", "unknown_card", "monthly_hours", "monthly_busy", "assigned",
           # the backend's own limits (services/safety/limits.py; `full` as above)
           "overload", "too_long", "risk",
           # the alley's power budget (services/budget/overload.py)
           "over_budget")
# The pile's reasons a guard's decision explains (it asked the pile to stop).
_GUARDED = ("remote", "balance", None)
# How late after the session's end (the pile's clock) a stop command may be dated.
_SLACK = timedelta(minutes=5)


def ending(stop_reason: str | None, guard_reason: str | None = None, *,
           command: str | None = None, assigned: bool = False) -> str | None:
    """The ending code (one of ENDINGS, or None) from the pile's stop reason, the
    guard's reason, who sent the stop command (`command`: "staff", "cutoff" or None)
    and whether staff assigned the session from the review list."""
    if stop_reason == "full":
        return "full"
    if guard_reason and stop_reason in _GUARDED:
        if guard_reason == "unknown_card" and assigned:
            return "assigned"
        return guard_reason
    if stop_reason == "remote":
        return {"cutoff": "fault", "staff": "staff"}.get(command or "", "remote")
    return stop_reason


def _stop_command(s: ChargingSession) -> str | None:
    """Who sent the stop command that ended this session: "staff", "cutoff" (an
    alert's automatic cut-off) or None (none found)."""
    if s.ended_at is None:
        return None
    stmt = (select(Command.created_by, Command.alert_id)
            .where(Command.pile_id == s.pile_id, Command.action == "stop",
                   or_(Command.port == s.port, Command.port.is_(None)),
                   Command.created_at <= s.ended_at + _SLACK)
            .order_by(Command.created_at.desc()).limit(1))
    if s.started_at is not None:
        stmt = stmt.where(Command.created_at >= s.started_at)
    row = db.session.execute(stmt).first()
    if row is None:
        return None
    return "staff" if row.created_by is not None else ("cutoff" if row.alert_id else None)


def of_session(s: ChargingSession) -> str | None:
    """Why this session ended (one of ENDINGS, or None while it runs)."""
    if s.ended_at is None and s.stop_reason is None:
        return None
    command = _stop_command(s) if s.stop_reason == "remote" and not s.guard_reason else None
    assigned = s.guard_reason == "unknown_card" and db.session.scalar(
        select(ReviewItem.status).where(ReviewItem.session_id == s.id)) == "assigned"
    return ending(s.stop_reason, s.guard_reason, command=command, assigned=assigned)


def last_by_port(ports: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str | None]:
    """{(pile id, port): why its last ended session ended} for these ports (the
    finished ones a page shows); a port with no ended session maps to None."""
    wanted = set(ports)
    out: dict[tuple[str, int], str | None] = dict.fromkeys(wanted)
    if not wanted:
        return out
    last = (select(func.max(ChargingSession.id))
            .where(ChargingSession.pile_id.in_(sorted({p for p, _ in wanted})),
                   ChargingSession.ended_at.is_not(None))
            .group_by(ChargingSession.pile_id, ChargingSession.port))
    for s in db.session.scalars(select(ChargingSession).where(ChargingSession.id.in_(last))):
        if (s.pile_id, s.port) in wanted:
            out[(s.pile_id, s.port)] = of_session(s)
    return out


def stop_asked(s: ChargingSession) -> tuple[str, Command | None] | None:
    """What came of the system's stop of this session (None: none was asked): `ended`
    once the pile ended the session, `accepted` when it acked the stop and still
    charges, else the command's status (pending, sent, rejected, timeout), or
    `unknown` without its command (a stop older than guard_command_id that migration
    y26_guard01 could not match); and the command."""
    if s.guard_stop_at is None:
        return None
    cmd = db.session.get(Command, s.guard_command_id) if s.guard_command_id else None
    if s.ended_at is not None:
        return "ended", cmd
    return (cmd.status if cmd is not None else "unknown"), cmd
