"""Property test (hypothesis): for random sequences of top-ups, sessions, refunds and
adjustments, every posting balances, every balance equals its entries, no session is
charged twice, and a resident's balance is what the money in and out says."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from chargers import create_app
from chargers.extensions import db
from chargers.models import (
    Adjustment,
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    Pile,
    Posting,
    User,
)
from chargers.services import onboarding, users
from chargers.services.billing import accounts as residents
from chargers.services.billing import ledger, settlement
from chargers.services.charging import sessions
from chargers.services.devices import alleys, piles
from chargers.settings import AlleyDefaults

from .billing_support import T0, finished, set_tariff

CARDS = ("A", "B", "C", "STRANGER", None)

op = st.one_of(
    st.tuples(st.just("topup"), st.sampled_from(CARDS[:3]), st.integers(1, 5000)),
    st.tuples(st.just("refund"), st.sampled_from(CARDS[:3]), st.integers(1, 3000)),
    st.tuples(st.just("session"), st.sampled_from(CARDS), st.integers(0, 600),
              st.integers(0, 5000)),
    st.tuples(st.just("late"), st.integers(0, 30), st.integers(1, 3000)),
    st.tuples(st.just("settle"),),
    st.tuples(st.just("review"), st.booleans()),
)


def app_for_example():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x",
                      "MQTT_URL": "", "RATELIMIT_STORAGE_URI": "memory://"},
                     config_name="testing")
    with app.app_context():
        db.create_all()
        admin = users.create_user("root", "correct-horse-battery", "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"), AlleyDefaults(), by=admin)
        piles.register_pile(admin, piles.PileInput(id="P-1", alley="lane", ports=4))
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="flat_hour",
                   service_cents=40, step_minutes=30, free_minutes=3, minimum_cents=10,
                   cap_cents=800)
    return app


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(op, min_size=1, max_size=25))
def test_random_money_keeps_the_ledger_whole(ops):
    app = app_for_example()
    with app.app_context():
        admin = db.session.scalar(select(User))
        acc = {c: residents.create_account(admin, residents.AccountInput(
            alley="lane", cards=[c], kind="prepaid"), T0).id for c in CARDS[:3]}
        money_in: dict[int, int] = defaultdict(int)
        n = 0
        for o in ops:
            now = T0 + timedelta(hours=n)
            n += 1
            if o[0] == "topup":
                residents.top_up(admin, acc[o[1]], o[2], "cash", None, now)
                money_in[acc[o[1]]] += o[2]
            elif o[0] == "refund":
                a = residents.get_account(admin, acc[o[1]])
                if o[2] <= ledger.balance(a):
                    residents.refund(admin, a.id, o[2], "cash", None, now)
                    money_in[a.id] -= o[2]
            elif o[0] == "session":
                finished("P-1", f"s{n}", o[1], o[2], o[3], start=now, status="timeout")
                db.session.commit()
            elif o[0] == "late":
                done = db.session.scalars(select(ChargingSession).where(
                    ChargingSession.settled_at.is_not(None)).order_by(ChargingSession.id)).all()
                if done:
                    s = done[o[1] % len(done)]
                    sessions.on_stop(db.session.get(Pile, "P-1"), sessions.Stop(
                        s.port, s.session_ref, s.energy_wh + o[2], "unplugged",
                        s.ended_at + timedelta(minutes=o[1]), "device"))
                    db.session.commit()
                    for adj in settlement.list_adjustments(admin):
                        target = db.session.get(ChargingSession, adj.session_id)
                        if target.billing in ("charged", "covered", "waived"):
                            settlement.decide_adjustment(admin, adj.id, o[1] % 2 == 0, "ok",
                                                         now)
            elif o[0] == "settle":
                settlement.settle(now, settlement.SettleRule(batch_size=3))
            elif o[0] == "review":
                for item in settlement.list_review(admin):
                    settlement.resolve_review(admin, item.id, account_id=acc["A"],
                                              waive=o[1], note="checked", now=now)
        settlement.settle(T0 + timedelta(hours=n + 1))

        assert ledger.verify() == []
        # every posting balances (also checked by verify, asserted here directly)
        sums = db.session.execute(select(LedgerEntry.posting_id, func.sum(LedgerEntry.amount_cents))
                                  .group_by(LedgerEntry.posting_id)).all()
        assert all(total == 0 for _, total in sums)
        # every balance is the sum of its entries
        for la in db.session.scalars(select(LedgerAccount)):
            entries = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
                                        .where(LedgerEntry.account_id == la.id))
            assert la.balance_cents == entries, la.code
        # no session charged twice, and every finished session settled
        charges = db.session.execute(select(Posting.session_id, func.count())
                                     .where(Posting.kind == "charge")
                                     .group_by(Posting.session_id)).all()
        assert all(c == 1 for _, c in charges)
        assert db.session.scalar(select(func.count()).select_from(ChargingSession)
                                 .where(ChargingSession.settled_at.is_(None))) == 0
        # a resident's balance: money in - refunds - charges - approved adjustments
        for a_id in acc.values():
            charged = db.session.scalar(select(func.coalesce(func.sum(ChargingSession.amount_cents), 0))
                                        .where(ChargingSession.account_id == a_id,
                                               ChargingSession.billing == "charged"))
            adjusted = db.session.scalar(
                select(func.coalesce(func.sum(Adjustment.delta_cents), 0))
                .join(ChargingSession, ChargingSession.id == Adjustment.session_id)
                .where(Adjustment.status == "approved", ChargingSession.account_id == a_id,
                       ChargingSession.billing == "charged"))
            a = residents.get_account(admin, a_id)
            assert ledger.balance(a) == money_in[a_id] - charged - adjusted
        db.session.remove()
        db.engine.dispose()
