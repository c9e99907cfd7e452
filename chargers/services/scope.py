"""Who may see what: admins see every alley, staff only the alleys they are given."""

from __future__ import annotations

from sqlalchemy import Select

from ..models import Alley, Pile, User
from .errors import NotFound


def visible_alley_ids(user: User | None) -> set[int] | None:
    """None means every alley (an admin); otherwise the ids the staff member may see."""
    if user is not None and user.is_admin:
        return None
    if user is None:
        return set()
    return {a.id for a in user.alleys}


def limit_to_alleys(stmt: Select, user: User | None, alley_column) -> Select:
    """Add a WHERE that keeps only rows of the user's alleys."""
    ids = visible_alley_ids(user)
    if ids is None:
        return stmt
    return stmt.where(alley_column.in_(ids))


def check_alley(user: User | None, alley: Alley | None, what: str = "alley") -> Alley:
    """The alley itself, or NotFound when it is missing or outside the user's scope."""
    ids = visible_alley_ids(user)
    if alley is None or (ids is not None and alley.id not in ids):
        raise NotFound(f"no such {what}")
    return alley


def check_pile(user: User | None, pile: Pile | None) -> Pile:
    """The pile itself, or NotFound when it is missing or outside the user's scope."""
    ids = visible_alley_ids(user)
    if pile is None or (ids is not None and pile.alley_id not in ids):
        raise NotFound("no such pile")
    return pile
