"""The balance guard's rules, with a chosen `now` (the broker round trip is in
test_billing_e2e.py): prepaid balance, monthly hours and one session at a time, unknown
cards after the grace unless the alley allows unbilled charging, exempt never."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alley, ChargingSession, Command, MoneyAudit, User
from chargers.services.billing import accounts, balance_guard

from .billing_support import T0, set_tariff
from .conftest import bearer

RULE = balance_guard.GuardRule(unknown_card_grace_s=120)


def running(ref: str, card: str | None, minutes_ago: float, port: int = 1,
            energy_wh: float = 0.0) -> int:
    s = ChargingSession(pile_id="P-1", port=port, session_ref=ref, card=card, status="active",
                        started_at=T0 - timedelta(minutes=minutes_ago), start_meter_wh=0.0,
                        energy_wh=energy_wh)
    db.session.add(s)
    db.session.commit()
    return s.id


def stops() -> dict[int, str]:
    return {s.id: s.guard_reason for s in db.session.scalars(
        select(ChargingSession).where(ChargingSession.guard_stop_at.is_not(None)))}


def test_guard_rules(app, client, admin, alley_with_pile):
    user, token = admin
    h = bearer(token)
    pre = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["PRE"],
                                                "kind": "prepaid"}, headers=h).json["id"]
    client.post(f"/api/v1/accounts/{pre}/topups", json={"amount_cents": 50, "method": "cash"},
                headers=h)
    client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["EX"], "kind": "exempt"},
                headers=h)
    client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["BROKE"],
                                          "kind": "prepaid"}, headers=h)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100, service_scheme="flat_hour",
                   service_cents=60)  # 1 fen a minute
        admin_user = db.session.get(User, user.id)
        accounts.create_account(admin_user, accounts.AccountInput(
            alley="lane", cards=["MO"], kind="monthly", monthly_from=T0 - timedelta(days=1),
            monthly_until=T0 + timedelta(days=29), monthly_hours=1), T0)
        a = running("a", "PRE", 30, port=1)          # 30 fen < 50: goes on
        b = running("b", "PRE", 60, port=2, energy_wh=0)  # 60 fen >= 50 (same balance)
        c = running("c", "EX", 600, port=3)          # exempt: never
        d = running("d", "NOBODY", 1, port=4)        # unknown, within the grace
        e = running("e", None, 3, port=1)            # no card, past the grace
        f = running("f", "BROKE", 0.5, port=2)       # no balance at all
        g = running("g", "MO", 61, port=3)           # past the monthly card's hour
        counts = balance_guard.check(T0, RULE)
        assert stops() == {b: "balance", e: "unknown_card", f: "balance", g: "monthly_hours"}
        assert counts == {"balance": 2, "unknown_card": 1, "monthly_hours": 1}
        assert {(c_.port, c_.action) for c_ in db.session.scalars(select(Command))} == {
            (2, "stop"), (1, "stop"), (3, "stop")} and len(db.session.scalars(
                select(Command)).all()) == 4
        assert {m.data["reason"] for m in db.session.scalars(
            select(MoneyAudit).where(MoneyAudit.action == "guard.stop"))} == {
            "balance", "unknown_card", "monthly_hours"}
        # asked once: a second pass adds nothing; the unknown card after its grace
        assert balance_guard.check(T0, RULE) == {}
        assert balance_guard.check(T0 + timedelta(minutes=2), RULE) == {"unknown_card": 1}
        assert a not in stops() and c not in stops() and d in stops()


def test_unbilled_alley_lets_unknown_cards_charge(app, client, admin, alley_with_pile):
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"allow_unbilled": True}, headers=bearer(token))
    assert r.status_code == 200 and r.json["allow_unbilled"] is True
    with app.app_context():
        assert db.session.scalar(select(Alley)).allow_unbilled
        running("x", "NOBODY", 600)
        assert balance_guard.check(T0, RULE) == {}


def test_monthly_card_one_session_at_a_time(app, client, admin, alley_with_pile):
    user, _ = admin
    with app.app_context():
        accounts.create_account(db.session.get(User, user.id), accounts.AccountInput(
            alley="lane", cards=["MO1", "MO2"], kind="monthly",
            monthly_from=T0 - timedelta(days=1), monthly_until=T0 + timedelta(days=29)), T0)
        first = running("m1", "MO1", 20, port=1)
        second = running("m2", "MO2", 5, port=2)
        assert balance_guard.check(T0, RULE) == {"monthly_busy": 1}
        assert stops() == {second: "monthly_busy"} and first not in stops()
