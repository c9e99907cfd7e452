"""A session as staff look at it for risk: the session in their scope, its curve, and
what came of a stop the system asked for (its command's state: asked is not done)."""

from __future__ import annotations

from sqlalchemy import select

from ...constants import CommandAction
from ...extensions import db
from ...models import ChargingSession, Command, MeterSample, Pile, User
from .. import scope
from ..errors import NotFound


def get_session(user: User | None, session_id: int) -> ChargingSession:
    """One session of a pile in the user's scope (404 outside it)."""
    s = db.session.get(ChargingSession, session_id)
    if s is None:
        raise NotFound("session.not_found")
    scope.check_pile(user, db.session.get(Pile, s.pile_id))
    return s


def curve(s: ChargingSession) -> list[MeterSample]:
    """The session's meter readings in the pile's time order."""
    return list(db.session.scalars(select(MeterSample).where(MeterSample.session_id == s.id)
                                   .order_by(MeterSample.ts, MeterSample.id)))


def guard_stop(s: ChargingSession) -> Command | None:
    """The stop command the system sent when it asked the pile to stop this session
    (services/safety/limits.stop and the balance guard: no person, no alert), or None."""
    if s.guard_stop_at is None:
        return None
    return db.session.scalar(
        select(Command).where(Command.pile_id == s.pile_id, Command.port == s.port,
                              Command.action == CommandAction.STOP,
                              Command.created_at == s.guard_stop_at,
                              Command.created_by.is_(None), Command.alert_id.is_(None))
        .order_by(Command.id).limit(1))
