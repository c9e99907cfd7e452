"""Who may see what: admins see every alley, staff only the alleys they are given.

Read only: nothing here writes or commits."""

from __future__ import annotations

from sqlalchemy import Select

from ..extensions import db
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


def _in_scope(user: User | None, alley_id: int, public: bool) -> bool:
    if public and user is None:  # a resident's view: every alley is public
        return True
    ids = visible_alley_ids(user)
    return ids is None or alley_id in ids


def limit_by_pile(stmt: Select, user: User | None, pile_id_column) -> Select:
    """Keep only rows whose pile is in the user's alleys; rows that name no pile (or
    an unknown one) only for admins. Joins piles only when there is a limit."""
    ids = visible_alley_ids(user)
    if ids is None:
        return stmt
    return stmt.join(Pile, Pile.id == pile_id_column).where(Pile.alley_id.in_(ids))


def check_alley(user: User | None, alley: Alley | None, missing: str = "alley.not_found", *,
                public: bool = False) -> Alley:
    """The alley itself, or NotFound when it is missing or outside the user's scope.
    With `public`, no user (a resident) may see every alley."""
    if alley is None or not _in_scope(user, alley.id, public):
        raise NotFound(missing)
    return alley


def check_pile(user: User | None, pile: Pile | None, *, public: bool = False) -> Pile:
    """The pile itself, or NotFound when it is missing or outside the user's scope.
    With `public`, no user (a resident) may see every pile."""
    if pile is None or not _in_scope(user, pile.alley_id, public):
        raise NotFound("pile.not_found")
    return pile


def get_in_alley(user: User | None, model, row_id: int, missing: str):
    """The row of `model` (one with an `alley_id`) with this id, or NotFound(missing)
    when there is none or its alley is outside the user's scope."""
    row = db.session.get(model, row_id)
    if row is None:
        raise NotFound(missing)
    check_alley(user, db.session.get(Alley, row.alley_id), missing)
    return row
