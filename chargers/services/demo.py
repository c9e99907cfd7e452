"""Demo data: Jiuru Alley (九如巷) and Tiyuchang Road (体育场路) with their piles.

`seed` commits; new alleys get the `settings.AlleyDefaults` it is handed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select

from ..extensions import db
from ..models import Pile, User
from ..settings import AlleyDefaults
from . import onboarding, users
from .devices import alleys, piles
from .devices.secrets import hash_secret, new_secret
from .maintenance import inspections

DEMO_ALLEYS = [
    {
        "alley": alleys.AlleyInput(
            slug="jiuru", name="九如巷", street="双塔街道", community="九如社区",
            address="苏州市姑苏区五卅路旁九如巷（约160米，50余户）",
            contacts="社区网格员 · 九如社区居委会",
        ),
        "prefix": "JRX", "piles": 16, "ports": 10,
        "places": ["巷口", "3号门", "7号门", "12号门", "消防通道旁", "17号门", "21号门", "巷尾"],
    },
    {
        "alley": alleys.AlleyInput(
            slug="tiyuchang", name="体育场路", street="双塔街道", community="体育场路社区",
            address="苏州市姑苏区体育场路", contacts="体育场路社区居委会",
        ),
        "prefix": "TYC", "piles": 6, "ports": 8,
        "places": ["东口", "车棚", "西口"],
    },
]

DEMO_ADMIN = ("admin", "admin-demo-123")


def seed(secrets_file: Path, defaults: AlleyDefaults) -> dict:
    """Create the demo alleys and piles if missing, issue every demo pile a fresh
    secret and write them to `secrets_file` (for the simulator). Returns a summary."""
    secrets_out: dict[str, str] = {}
    created = 0
    for spec in DEMO_ALLEYS:
        slug = spec["alley"].slug
        alley = alleys.find_alley(slug)
        if alley is None:
            alley = onboarding.create_alley(spec["alley"], defaults)  # with the default inspection plans
        inspections.seed_default_plans(alley)  # an alley made before plans existed
        for n in range(1, spec["piles"] + 1):
            pile_id = f"{spec['prefix']}-{n:03d}"
            place = spec["places"][(n - 1) % len(spec["places"])]
            pile = db.session.get(Pile, pile_id)
            if pile is None:
                pile, secret = piles.register_pile(None, piles.PileInput(
                    id=pile_id, alley=slug, ports=spec["ports"], label=f"{n}号桩",
                    location_note=place))
                created += 1
            else:
                secret = new_secret()
                pile.secret_hash = hash_secret(secret)
            secrets_out[pile_id] = secret
    db.session.commit()

    admin_created = False
    if db.session.scalar(select(User).limit(1)) is None:
        users.create_user(DEMO_ADMIN[0], DEMO_ADMIN[1], "admin")
        admin_created = True

    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text(json.dumps(secrets_out, indent=1))
    os.chmod(secrets_file, 0o600)
    return {"piles_created": created, "piles": len(secrets_out), "admin_created": admin_created}
