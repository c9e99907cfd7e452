"""Demo data: Jiuru Alley (九如巷) and Tiyuchang Road (体育场路) with their piles, the
residents' accounts for the cards the simulator presents (cards.py), and a few weeks
of their past (history.py).

`seed` commits; new alleys get the `settings.AlleyDefaults` it is handed. Running it
again adds nothing but fresh pile secrets (and what a newer roster lists)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from ...extensions import db
from ...models import InspectionRecord, MonthClose, Pile, ResidentAccount, User, WorkOrder
from ...settings import AlleyDefaults, CloseRule, SettleRule
from .. import onboarding, users
from ..billing import accounts
from ..devices import alleys, piles
from ..devices.secrets import hash_secret, new_secret
from ..maintenance import inspections
from . import cards, history

DEMO_ALLEYS = [
    {
        "alley": alleys.AlleyInput(
            slug="jiuru", name="九如巷", street="双塔街道", community="九如社区",
            address="苏州市姑苏区五卅路旁九如巷（约160米，50余户）",
            contacts="社区网格员 · 九如社区居委会",
        ),
        "prefix": "JRX", "piles": 16, "ports": 10,
        "places": ["巷口", "3号门", "7号门", "12号门", "消防通道旁", "17号门", "21号门", "巷尾"],
        "past": history.DemoAlleyPlan(sessions_per_day=45, repair=(
            "JRX-007", 3, "3号口插座外壳发黑，有轻微烧蚀痕迹，待更换插座")),
    },
    {
        "alley": alleys.AlleyInput(
            slug="tiyuchang", name="体育场路", street="双塔街道", community="体育场路社区",
            address="苏州市姑苏区体育场路", contacts="体育场路社区居委会",
        ),
        "prefix": "TYC", "piles": 6, "ports": 8,
        "places": ["东口", "车棚", "西口"],
        "past": history.DemoAlleyPlan(sessions_per_day=18),
    },
]

DEMO_ADMIN = ("admin", "admin-demo-123")


# The demo alleys were installed this long before the seed: before their history,
# which starts at most some 62 days back (the 1st of the last closable month).
INSTALLED_AGO = timedelta(days=80)


@dataclass(frozen=True)
class DemoRules:
    """The deployment's rules the seed runs the services with (built by the door)."""

    defaults: AlleyDefaults = field(default_factory=AlleyDefaults)
    close: CloseRule = field(default_factory=CloseRule)
    settle: SettleRule = field(default_factory=SettleRule)


@dataclass
class AlleySummary:
    """What one demo alley holds after the seed."""

    slug: str
    accounts: int
    cards: int
    sessions: int
    new_sessions: int
    published: list[str]
    records: int
    open_orders: int
    demo_card: tuple[str, str]
    settled: Counter


def seed(secrets_file: Path, rules: DemoRules, now: datetime) -> dict:
    """Create the demo alleys and piles if missing, issue every demo pile a fresh
    secret and write them to `secrets_file` (for the simulator); then the residents'
    accounts and the alleys' past up to `now`, once. Returns a summary."""
    began = time.monotonic()
    secrets_out: dict[str, str] = {}
    created = 0
    installed = now - INSTALLED_AGO
    for spec in DEMO_ALLEYS:
        slug = spec["alley"].slug
        alley = alleys.find_alley(slug)
        if alley is None:  # with the default inspection plans
            alley = onboarding.create_alley(spec["alley"], rules.defaults, now=installed)
        inspections.seed_default_plans(alley, installed)  # an alley made before plans existed
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

    staff = _staff()
    summaries = []
    for spec in DEMO_ALLEYS:
        alley = alleys.find_alley(spec["alley"].slug)
        done = history.Replayed()
        if staff is not None and not history.has_history(alley):
            done = history.replay(staff, alley, spec["past"], now, rules.close, rules.settle)
        summaries.append(_summary(alley, done))
    _demo_wechat()
    return {"piles_created": created, "piles": len(secrets_out), "admin_created": admin_created,
            "admin_login": DEMO_ADMIN if users.authenticate(*DEMO_ADMIN) else None,
            "alleys": summaries, "seconds": round(time.monotonic() - began, 1)}


def _demo_wechat() -> int:
    """Every demo account without channels hears by WeChat (an openid as the official
    account's OAuth would give; `make run` points WeChat at the local emulator, whose
    page lists the messages), night messages welcome so the demo shows them at any
    hour. Commits. Returns how many were set."""
    from ...models import ResidentAccount, ResidentChannels

    have = set(db.session.scalars(select(ResidentChannels.resident_id)))
    n = 0
    for acc_id in db.session.scalars(select(ResidentAccount.id).order_by(ResidentAccount.id)):
        if acc_id not in have:
            db.session.add(ResidentChannels(resident_id=acc_id, email="", sms=False,
                                            wechat_openid=f"o-demo-{acc_id:05d}", wechat=True,
                                            night=True, language=""))
            n += 1
    db.session.commit()
    return n


def _staff() -> User | None:
    """Who records the demo's staff work: the demo admin, else the first admin."""
    return (db.session.scalar(select(User).where(User.name == DEMO_ADMIN[0], User.role == "admin"))
            or db.session.scalar(select(User).where(User.role == "admin").order_by(User.id)))


def _summary(alley, done: history.Replayed) -> AlleySummary:
    def count(model, *where) -> int:
        return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    card, last4 = cards.demo_card(alley.slug)
    known = accounts.lookup(alley, card, last4) is not None
    return AlleySummary(
        slug=alley.slug,
        accounts=count(ResidentAccount, ResidentAccount.alley_id == alley.id),
        cards=sum(len(a.cards) for a in db.session.scalars(
            select(ResidentAccount).where(ResidentAccount.alley_id == alley.id))),
        sessions=history.sessions_count(alley), new_sessions=done.sessions,
        published=list(db.session.scalars(select(MonthClose.month).where(
            MonthClose.alley_id == alley.id, MonthClose.published_at.is_not(None))
            .order_by(MonthClose.month))),
        records=count(InspectionRecord, InspectionRecord.alley_id == alley.id),
        open_orders=count(WorkOrder, WorkOrder.alley_id == alley.id,
                          WorkOrder.status.in_(inspections.OPEN_ORDERS)),
        demo_card=(card, last4) if known else ("", ""),
        settled=done.settled)
