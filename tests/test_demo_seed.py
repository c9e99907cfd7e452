"""`seed-demo` makes a living alley: accounts for the cards the simulator presents, a
few weeks of settled past sessions, a closed and published previous month, inspection
records and one open work order; twice is once; "My account" works with the card it
prints. Seeded at a fixed moment (no dependence on today's date)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import (
    ChargingSession,
    GridBill,
    InspectionRecord,
    LedgerEntry,
    MeterSample,
    MonthClose,
    Pile,
    Posting,
    ResidentAccount,
    ReviewItem,
    Statement,
    WorkOrder,
)
from chargers.services import demo
from chargers.services.billing import accounts, ledger
from chargers.services.charging import time_left
from chargers.services.charging.estimate import MIN_HISTORY
from chargers.services.demo import cards, history
from chargers.services.devices import alleys
from chargers.services.maintenance.inspections import OPEN_ORDERS
from chargers.simulator import CardBox
from tests.webtools import csrf_from

# 10:00 on 4 March in Suzhou: February may close (and was published on the 3rd).
NOW = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


def _counts() -> dict[str, int]:
    def n(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model))

    return {m.__name__: n(m) for m in (ResidentAccount, ChargingSession, MeterSample, Posting,
                                       LedgerEntry, ReviewItem, MonthClose, Statement, GridBill,
                                       InspectionRecord, WorkOrder)}


def test_seed_demo_makes_a_living_alley_once(app, client, tmp_path):
    with app.app_context():
        summary = demo.seed(tmp_path / "secrets.json", demo.DemoRules(), NOW)
        first = _counts()
        jiuru = alleys.find_alley("jiuru")

        # The simulator's cards: most are held by an account of the alley.
        pick = cards.picker("jiuru")
        rng = random.Random(1)
        drawn = [pick.pick(rng) for _ in range(2000)]
        held = {c: accounts.find_by_card(jiuru.id, c) is not None for c in set(drawn)}
        assert 0.95 <= sum(held[c] for c in drawn) / len(drawn) < 1.0
        assert all(accounts.find_by_card(jiuru.id, c) for c in pick.known)
        kinds = dict(db.session.execute(select(ResidentAccount.kind, func.count())
                                        .where(ResidentAccount.alley_id == jiuru.id)
                                        .group_by(ResidentAccount.kind)).all())
        assert kinds["prepaid"] > 10 * kinds["monthly"] > 0 and kinds["exempt"] == 1

        # Past sessions, all finished, priced by the tariff and settled.
        past = db.session.scalars(select(ChargingSession).join(Pile).where(
            Pile.alley_id == jiuru.id)).all()
        assert len(past) > 500
        assert all(s.settled_at is not None and s.ended_at <= NOW and s.tariff_id for s in past)
        billing = {s.billing for s in past}
        assert {"charged", "covered", "waived"} <= billing <= {"charged", "covered", "waived",
                                                               "review"}
        assert sum(s.billing in ("review", "waived") for s in past) < 0.06 * len(past)
        assert len(time_left.alley_history(jiuru.id, NOW)) >= MIN_HISTORY
        assert ledger.verify() == []

        # February closed with statements, its grid bill entered and published.
        feb = db.session.scalar(select(MonthClose).where(MonthClose.alley_id == jiuru.id,
                                                         MonthClose.month == "2026-02"))
        assert feb is not None and feb.published_at is not None and feb.published_grid_wh
        assert feb.sessions > 300 and feb.electricity_cents > 0 and feb.topups_cents > 0
        assert db.session.scalar(select(func.count()).select_from(Statement)
                                 .where(Statement.close_id == feb.id)) == kinds_total(kinds)

        # The fire-safety routine: signed checks, one repair still open.
        assert db.session.scalar(select(func.count()).select_from(InspectionRecord)
                                 .where(InspectionRecord.alley_id == jiuru.id)) > 20
        orders = db.session.scalars(select(WorkOrder).where(
            WorkOrder.status.in_(OPEN_ORDERS))).all()
        assert [(o.pile_id, o.port) for o in orders] == [("JRX-007", 3)]

        # Twice is once.
        again = demo.seed(tmp_path / "secrets.json", demo.DemoRules(), NOW)
        assert _counts() == first
        assert [a.sessions for a in again["alleys"]] == [a.sessions for a in summary["alleys"]]
        assert all(a.new_sessions == 0 for a in again["alleys"])

    # "My account" with the card the seed prints.
    card, last4 = summary["alleys"][0].demo_card
    assert (card, last4) == cards.demo_card("jiuru") and card
    csrf = csrf_from(client.get("/a/jiuru/account?lang=en").get_data(as_text=True))
    page = client.post("/a/jiuru/account?lang=en",
                       data={"csrf_token": csrf, "card": card, "phone_last4": last4})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "No account matches" not in html
    assert "Balance" in html and "/r/" in html  # its balance and its receipts


def kinds_total(kinds: dict[str, int]) -> int:
    return sum(kinds.values())


def test_a_card_charges_in_one_place_at_a_time():
    """The simulator's card box and the past's plan both keep a known card to one port
    at a time (a monthly card charging twice would be stopped as `monthly_busy`)."""
    box = CardBox(cards.picker("tiyuchang"))
    rng = random.Random(3)
    taken = [box.take(rng) for _ in range(40)]  # fewer than the roster's cards
    known = [c for c in taken if c in cards.picker("tiyuchang").known]
    assert len(known) == len(set(known)) and len(known) >= 35
    for c in taken:
        box.give_back(c)
    assert not box.busy

    tz = ZoneInfo("Asia/Shanghai")
    ports = [(f"P-{p}", n) for p in range(3) for n in range(1, 9)]
    past = history.plan_charges(random.Random(5), ports, cards.picker("tiyuchang"),
                                datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC),
                                tz, per_day=30)
    assert 150 < len(past) < 300
    for key in {(c.pile_id, c.port) for c in past}:
        mine = sorted((c.started_at, c.ended_at) for c in past if (c.pile_id, c.port) == key)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
    for card in set(cards.picker("tiyuchang").known):
        mine = sorted((c.started_at, c.ended_at) for c in past if c.card == card)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
    assert {c.reason for c in past} == {"full", "unplugged"}
    assert all(c.samples[-1][0] == c.ended_at and c.energy_wh > 0 for c in past)
