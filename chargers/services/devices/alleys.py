"""Alleys: the row and its fields, its time zone, look-ups in scope.

`add_alley` and `change_alley` add or change without committing: services.onboarding
gives a new alley its tariff and plans (and a new price its tariff version) and
commits. A new alley's defaults come in as a `settings.AlleyDefaults` from the door."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select

from ...extensions import db
from ...models import Alley, User
from ...money import yuan_text
from ...settings import AlleyDefaults
from .. import scope
from ..errors import Conflict, Forbidden, Invalid

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
EDITABLE = ("name", "street", "community", "address", "timezone", "contacts",
            "tariff_cents_per_kwh", "auto_cutoff", "allow_unbilled")


@dataclass
class AlleyInput:
    """What staff give to create or change an alley (None = leave as is)."""

    slug: str | None = None
    name: str | None = None
    street: str | None = None
    community: str | None = None
    address: str | None = None
    timezone: str | None = None
    contacts: str | None = None
    tariff_cents_per_kwh: int | None = None
    auto_cutoff: bool | None = None
    allow_unbilled: bool | None = None  # sessions on unknown cards may go on


def _check(data: AlleyInput) -> None:
    if data.slug is not None and not SLUG_RE.match(data.slug):
        raise Invalid("alley.slug_format")
    if data.name is not None and not data.name.strip():
        raise Invalid("alley.name_required")
    if data.timezone is not None and data.timezone not in available_timezones():
        raise Invalid("alley.timezone_unknown", zone=data.timezone)
    if data.tariff_cents_per_kwh is not None and not 0 <= data.tariff_cents_per_kwh <= 100_000:
        raise Invalid("alley.tariff_range", max=yuan_text(100_000))


def may_create_alley(user: User | None) -> bool:
    """Only admins add alleys (a staff member's scope is the alleys they are given)."""
    return user is not None and user.is_admin


def add_alley(data: AlleyInput, defaults: AlleyDefaults, *, by: User | None = None,
              now: datetime | None = None) -> Alley:
    """A new alley row (validated; the deployment's time zone and price unless given;
    created at `now` when given), added and flushed. `by` is the staff member asking
    (None: the system itself).
    services.onboarding gives it its tariff and plans, and commits."""
    if by is not None and not may_create_alley(by):
        raise Forbidden("user.admins_only")
    if not data.slug or not data.name:
        raise Invalid("alley.slug_and_name_required")
    _check(data)
    if find_alley(data.slug):
        raise Conflict("alley.exists", slug=data.slug)
    alley = Alley(
        slug=data.slug,
        name=data.name.strip(),
        timezone=defaults.timezone,
        tariff_cents_per_kwh=defaults.tariff_cents_per_kwh,
    )
    if now is not None:
        alley.created_at = now
    _apply(alley, data)
    db.session.add(alley)
    db.session.flush()
    return alley


def _apply(alley: Alley, data: AlleyInput) -> None:
    for field in EDITABLE:
        value = getattr(data, field)
        if value is not None:
            setattr(alley, field, value.strip() if isinstance(value, str) else value)


def change_alley(user: User | None, slug: str, data: AlleyInput) -> tuple[Alley, bool]:
    """Change an alley's editable fields (its slug stays); says whether its
    electricity price changed. Does not commit (services.onboarding does)."""
    alley = get_alley(user, slug)
    _check(data)
    old_price = alley.tariff_cents_per_kwh
    _apply(alley, data)
    return alley, alley.tariff_cents_per_kwh != old_price


def zone(alley: Alley, default: str | None = None) -> ZoneInfo:
    """The alley's time zone (`default`, the deployment's, if its name is not known;
    a new alley's default zone when none is given). The one way services and pages
    learn the alley's day: never the server's local time, never a zone written in code."""
    try:
        return ZoneInfo(alley.timezone)
    except (KeyError, ValueError, TypeError):
        return ZoneInfo(default or AlleyDefaults.timezone)


def find_alley(slug: str) -> Alley | None:
    """The alley with this slug, or None (no scope: for services and commands)."""
    return db.session.scalar(select(Alley).where(Alley.slug == slug))


def get_alley(user: User | None, slug: str) -> Alley:
    """The alley, within the user's scope (None user = public, every alley)."""
    return scope.check_alley(user, find_alley(slug), public=True)


def list_alleys(user: User | None = None) -> list[Alley]:
    """Alleys by name; with a user, only those in scope."""
    stmt = select(Alley).order_by(Alley.name)
    if user is not None:
        stmt = scope.limit_to_alleys(stmt, user, Alley.id)
    return list(db.session.scalars(stmt))
