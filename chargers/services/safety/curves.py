"""A session as staff look at it for risk: the session in their scope and its curve."""

from __future__ import annotations

from sqlalchemy import select

from ...extensions import db
from ...models import ChargingSession, MeterSample, Pile, User
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
