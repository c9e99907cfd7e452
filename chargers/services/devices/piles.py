"""Piles and their ports: register, update, enable/disable, new secret.

Who commits: `register_pile`, `update_pile` and `rotate_secret` (staff) commit;
`resize_ports` and `set_pile_enabled` change objects inside their caller's
transaction; `get_pile` and `list_piles` only read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ...extensions import db
from ...models import Alley, Pile, Port, User
from ...ordering import pile_key
from ...protocol.codes import MAX_PORTS, PILE_ID_RE
from .. import scope
from ..errors import Conflict, Invalid
from . import alleys
from .secrets import hash_secret, new_secret


@dataclass
class PileInput:
    """What staff give to register or change a pile (None = leave as is)."""

    id: str | None = None
    alley: str | None = None  # slug
    ports: int | None = None
    label: str | None = None
    location_note: str | None = None
    enabled: bool | None = None


def register_pile(user: User | None, data: PileInput) -> tuple[Pile, str]:
    """A new pile with its ports; returns it with its MQTT secret, which is not kept."""
    if not data.id or not PILE_ID_RE.match(data.id):
        raise Invalid("pile.id_format")
    if data.ports is None or not 1 <= data.ports <= MAX_PORTS:
        raise Invalid("pile.ports_range", n=MAX_PORTS)
    if not data.alley:
        raise Invalid("pile.alley_required")
    alley = alleys.get_alley(user, data.alley)
    if db.session.get(Pile, data.id):
        raise Conflict("pile.exists", id=data.id)
    secret = new_secret()
    pile = Pile(
        id=data.id,
        alley=alley,
        label=(data.label or data.id).strip(),
        port_count=data.ports,
        location_note=(data.location_note or "").strip(),
        secret_hash=hash_secret(secret),
        enabled=True if data.enabled is None else data.enabled,
    )
    pile.ports = [Port(number=n) for n in range(1, data.ports + 1)]
    db.session.add(pile)
    db.session.commit()
    return pile, secret


def get_pile(user: User | None, pile_id: str) -> Pile:
    """The pile, within the user's scope (None user = public)."""
    return scope.check_pile(user, db.session.get(Pile, pile_id), public=True)


def list_piles(
    user: User | None,
    alley_slug: str | None = None,
    *,
    newest_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Pile]:
    """Piles in scope, optionally of one alley: by alley then label naturally (1号桩
    before 10号桩, chargers/ordering.py), or newest first."""
    stmt = select(Pile).join(Alley)
    stmt = scope.limit_to_alleys(stmt, user, Pile.alley_id)
    if alley_slug:
        stmt = stmt.where(Alley.slug == alley_slug)
    if newest_first:
        stmt = stmt.order_by(Pile.created_at.desc(), Pile.id)
        return list(db.session.scalars(stmt.limit(limit).offset(offset)))
    # An alley's piles are a few dozen: sorted here, where the natural order is known.
    rows = sorted(db.session.execute(stmt.add_columns(Alley.slug)).all(),
                  key=lambda r: (r[1], pile_key(r[0])))
    rows = rows[offset:offset + limit if limit is not None else None]
    return [r[0] for r in rows]


def update_pile(user: User | None, pile_id: str, data: PileInput) -> Pile:
    """Change label, location, alley, enabled, or the port count (ports are added or
    removed at the end; a port with charging history is kept only if still in range)."""
    pile = get_pile(user, pile_id)
    if data.label is not None:
        if not data.label.strip():
            raise Invalid("pile.label_empty")
        pile.label = data.label.strip()
    if data.location_note is not None:
        pile.location_note = data.location_note.strip()
    if data.enabled is not None:
        pile.enabled = data.enabled
    if data.alley is not None:
        pile.alley = alleys.get_alley(user, data.alley)
    if data.ports is not None:
        if not 1 <= data.ports <= MAX_PORTS:
            raise Invalid("pile.ports_range", n=MAX_PORTS)
        resize_ports(pile, data.ports)
    db.session.commit()
    return pile


def resize_ports(pile: Pile, count: int) -> None:
    """Ports 1..count: add the missing ones at the end, remove those above. No commit."""
    have = {p.number: p for p in pile.ports}
    for n in range(1, count + 1):
        if n not in have:
            pile.ports.append(Port(number=n))
    for n, port in have.items():
        if n > count:
            pile.ports.remove(port)
    pile.port_count = count


def set_pile_enabled(user: User | None, pile_id: str, enabled: bool) -> Pile:
    """Take a whole pile in or out of service (in our records; commands go separately)."""
    return update_pile(user, pile_id, PileInput(enabled=enabled))


def rotate_secret(user: User | None, pile_id: str) -> tuple[Pile, str]:
    """Issue the pile a new MQTT secret; the old one stops working."""
    pile = get_pile(user, pile_id)
    secret = new_secret()
    pile.secret_hash = hash_secret(secret)
    db.session.commit()
    return pile, secret
