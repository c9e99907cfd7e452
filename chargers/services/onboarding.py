"""An alley from above: created with its first tariff and its inspection plans, and
changed with a new tariff version when its price changes. The one place where
devices (the alley row), billing (tariffs) and maintenance (plans) meet, so that
none of them imports another for it. Commits."""

from __future__ import annotations

from datetime import datetime

from ..extensions import db
from ..models import Alley, User
from ..settings import AlleyDefaults
from .billing import tariffs
from .devices import alleys
from .devices.alleys import AlleyInput
from .maintenance import inspections


def create_alley(data: AlleyInput, defaults: AlleyDefaults, *, by: User | None = None,
                 now: datetime | None = None) -> Alley:
    """A new alley with the deployment's default tariff (its first tariff version),
    time zone unless given, and the default fire-safety inspection plans, due from
    `now` (default the clock's now; seed-demo dates an alley before its history).
    `by` is the staff member asking (None: the system itself, e.g. seed-demo)."""
    alley = alleys.add_alley(data, defaults, by=by, now=now)
    tariffs.first_tariff(alley)
    inspections.seed_default_plans(alley, now)
    db.session.commit()
    return alley


def update_alley(user: User | None, slug: str, data: AlleyInput) -> Alley:
    """Change an alley's editable fields. Prices are versioned: a new electricity price
    is a tariff version from now (sessions already started keep theirs)."""
    alley, price_changed = alleys.change_alley(user, slug, data)
    if price_changed:
        tariffs.new_electricity_price(alley, user)
    db.session.commit()
    return alley
