"""Settlement and the ledger on SQLite: charges, review list, covered kinds, late stops as
adjustments, `billing verify`, and a run killed mid-batch (a real SIGKILL)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import func, select

from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import (
    Adjustment,
    ChargingSession,
    LedgerAccount,
    MoneyAudit,
    Posting,
    ReviewItem,
    utcnow,
)
from chargers.services.billing import accounts, ledger, settlement, tariffs

from .billing_support import T0, finished, set_tariff
from .conftest import bearer
from .ingest_support import ROOT

NOW = T0 + timedelta(hours=12)


def make_account(client, token, cards, kind="prepaid", alley="lane", topup=None, phone="13800001234"):
    r = client.post("/api/v1/accounts", json={"alley": alley, "cards": cards, "kind": kind,
                                              "household": "3-201", "phone": phone},
                    headers=bearer(token))
    assert r.status_code == 201, r.json
    if topup:
        t = client.post(f"/api/v1/accounts/{r.json['id']}/topups",
                        json={"amount_cents": topup, "method": "cash"}, headers=bearer(token))
        assert t.status_code == 201, t.json
    return r.json["id"]


def balance(client, token, acc_id):
    return client.get(f"/api/v1/accounts/{acc_id}", headers=bearer(token)).json["balance_cents"]


def test_new_alley_starts_with_its_default_tariff(app, client, admin, alley_with_pile):
    with app.app_context():
        from chargers.services.devices import alleys

        t = tariffs.in_force(alleys.find_alley("lane"), utcnow())
        assert t.electricity_cents_per_kwh == app.config["DEFAULT_TARIFF_CENTS_PER_KWH"]
        assert t.service_scheme == "none"


def test_settle_charges_the_card_holder_once(app, client, admin, alley_with_pile):
    _, token = admin
    acc = make_account(client, token, ["C-1"], topup=1000)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="flat_hour",
                   service_cents=40, step_minutes=30)
        s1 = finished("P-1", "s1", "C-1", 90, 1500).id  # 90 fen + 60 fen
        db.session.commit()
        assert all_jobs()["settle"].func(NOW, None) == "1 charged"
        assert all_jobs()["settle"].func(NOW, None) is None
        s = db.session.get(ChargingSession, s1)
        assert (s.energy_cents, s.service_cents, s.amount_cents) == (90, 60, 150)
        assert s.billing == "charged" and s.receipt_token and s.settled_at == NOW
        assert ledger.verify() == []
    assert balance(client, token, acc) == 1000 - 150
    r = client.get("/api/v1/sessions?pile=P-1", headers=bearer(token)).json
    assert (r[0]["card"], r[0]["energy_cents"], r[0]["service_cents"], r[0]["amount_cents"]) == (
        "C-1", 90, 60, 150)
    assert r[0]["tariff"]["electricity_cents_per_kwh"] == 60


def test_a_charge_above_the_balance_becomes_debt(app, client, admin, alley_with_pile):
    _, token = admin
    acc = make_account(client, token, ["C-1"], topup=100)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="flat_hour",
                   service_cents=60)
        finished("P-1", "s1", "C-1", 120, 1000)  # 60 + 120 = 180 > 100
        db.session.commit()
        assert settlement.settle(NOW) == {"shortfall": 1}  # never "free"
        s = db.session.scalar(select(ChargingSession))
        assert (s.energy_cents, s.service_cents, s.amount_cents) == (60, 120, 180)
        assert s.shortfall_cents == 80 and s.billing == "charged"
        assert ledger.verify() == []
    assert balance(client, token, acc) == -80  # owed, cleared first by the next top-up


def test_review_list_and_its_resolution(app, client, admin, alley_with_pile, make_staff):
    user, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    acc = make_account(client, token, ["C-1"], topup=500)
    make_account(client, token, ["FAR"], alley="other")
    with app.app_context():
        finished("P-1", "a", None, 60, 1000)
        finished("P-1", "b", "NOBODY", 60, 1000)
        finished("P-1", "c", "FAR", 60, 1000)
        db.session.commit()
        counts = settlement.settle(NOW)
        assert counts == {"review": 3}
        items = {i.reason: i.id for i in db.session.scalars(select(ReviewItem))}
        assert set(items) == {"no_card", "unknown_card", "other_alley"}
        assert db.session.scalar(select(func.count()).select_from(Posting)
                                 .where(Posting.kind == "charge")) == 0
        from chargers.models import User

        staff = db.session.get(User, user.id)
        settlement.resolve_review(staff, items["unknown_card"], account_id=acc, waive=False,
                                  note="his new card", now=NOW)
        settlement.resolve_review(staff, items["no_card"], account_id=None, waive=True,
                                  note="test charge by the installer", now=NOW)
        assert ledger.verify() == []
        assert {a.action for a in db.session.scalars(select(MoneyAudit))} >= {
            "review.assigned", "review.waived", "money.topup", "account.created"}
    assert balance(client, token, acc) == 500 - 100


def test_exempt_and_monthly_are_covered(app, client, admin, alley_with_pile):
    _, token = admin
    ex = make_account(client, token, ["EX"], kind="exempt")
    with app.app_context():
        from chargers.models import ResidentAccount

        mid = accounts.create_account(None, accounts.AccountInput(
            alley="lane", cards=["MO"], kind="monthly", monthly_from=T0 - timedelta(days=1),
            monthly_until=T0 + timedelta(days=29), monthly_hours=3), NOW).id
        finished("P-1", "e", "EX", 60, 1000)
        finished("P-1", "m1", "MO", 120, 1000)
        finished("P-1", "m2", "MO", 120, 1000, start=T0 + timedelta(hours=3))  # past 3 h
        db.session.commit()
        counts = settlement.settle(NOW)
        assert counts["covered"] == 2 and counts["shortfall"] == 1
        m2 = db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == "m2"))
        # 1 of its 2 hours left on the card: the other hour is owed (balance 0: debt)
        assert m2.billing == "charged" and m2.covered_s == 3600
        assert m2.amount_cents - m2.covered_cents == m2.shortfall_cents > 0
        assert db.session.get(ResidentAccount, mid).kind == "monthly"
        assert ledger.verify() == []
    assert balance(client, token, ex) == 0


def test_late_stop_after_settlement_is_an_adjustment(app, client, admin, alley_with_pile):
    from chargers.models import Pile
    from chargers.services.charging import sessions

    user, token = admin
    acc = make_account(client, token, ["C-1"], topup=1000)
    with app.app_context():
        from chargers.models import User

        staff = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=100)
        s = finished("P-1", "t", "C-1", 60, 1000, status="timeout")
        db.session.commit()
        settlement.settle(NOW)
        sessions.on_stop(db.session.get(Pile, "P-1"), sessions.Stop(
            1, "t", 1500, "unplugged", T0 + timedelta(minutes=90), "device"))
        db.session.commit()
        s = db.session.get(ChargingSession, s.id)
        assert (s.amount_cents, s.energy_wh) == (100, 1000)  # never a silent rebill
        adj = db.session.scalar(select(Adjustment))
        assert (adj.delta_cents, adj.status) == (50, "pending")
        settlement.decide_adjustment(staff, adj.id, True, "late stop confirmed", NOW)
        assert ledger.verify() == []
    assert balance(client, token, acc) == 1000 - 150


def test_verify_names_a_difference(app, client, admin, alley_with_pile):
    _, token = admin
    make_account(client, token, ["C-1"], topup=300)
    runner = app.test_cli_runner()
    r = runner.invoke(args=["billing", "verify"])
    assert r.exit_code == 0, r.output
    with app.app_context():
        la = db.session.scalar(select(LedgerAccount).where(LedgerAccount.kind == "resident"))
        la.balance_cents += 1  # tampering outside the ledger
        db.session.commit()
        code = la.code
    r = runner.invoke(args=["billing", "verify"])
    assert r.exit_code == 1 and code in r.output and "301" in r.output


KILLER = """
import os, signal, sys
from chargers import create_app
from chargers.services.billing import settlement
app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x"}, config_name="testing")
real, seen = settlement._write, []
def write(values, priced):
    real(values, priced)
    seen.append(values["id"])
    if len(seen) == 3:  # mid-batch, after pricing three sessions
        os.kill(os.getpid(), signal.SIGKILL)
settlement._write = write
with app.app_context():
    from datetime import datetime
    settlement.settle(datetime.fromisoformat(sys.argv[2]), settlement.SettleRule(batch_size=5))
"""


def test_a_run_killed_mid_batch_then_rerun_charges_each_once(app, app_config, client, admin,
                                                              alley_with_pile):
    _, token = admin
    acc = make_account(client, token, ["C-1"], topup=10_000)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        for i in range(12):
            finished("P-1", f"k{i}", "C-1", 60, 100 * (i + 1))
        db.session.commit()
        # a first batch settles, the second dies after pricing three of its sessions
        settlement.settle_batch(NOW, 5)
    url = app_config["SQLALCHEMY_DATABASE_URI"]
    proc = subprocess.run([sys.executable, "-c", KILLER, url, NOW.isoformat()], cwd=ROOT,
                          env={**os.environ, "CHARGERS_ENV": "testing"}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr[-2000:]
    with app.app_context():
        db.session.expire_all()
        settled = db.session.scalar(select(func.count()).select_from(ChargingSession)
                                    .where(ChargingSession.settled_at.is_not(None)))
        assert settled == 5  # the killed batch left nothing behind
        assert settlement.settle(NOW) == {"charged": 7}
        keys = db.session.scalars(select(Posting.key).where(Posting.kind == "charge")).all()
        assert sorted(keys) == sorted(f"charge:{i}" for i in range(1, 13))
        assert ledger.verify() == []
    assert balance(client, token, acc) == 10_000 - sum(10 * (i + 1) for i in range(12))


def test_a_mistaken_top_up_is_corrected_by_a_reversal_once(app, client, admin, alley_with_pile):
    _, token = admin
    acc = make_account(client, token, ["C-1"])
    r = client.post(f"/api/v1/accounts/{acc}/topups", json={"amount_cents": 5000,
                                                            "method": "cash"}, headers=bearer(token))
    posting = r.json["id"]
    r = client.post(f"/api/v1/postings/{posting}/reverse", json={"note": "typed 5000 for 500"},
                    headers=bearer(token))
    assert r.status_code == 201 and r.json["reverses"] == posting
    r = client.post(f"/api/v1/postings/{posting}/reverse", json={"note": "again"},
                    headers=bearer(token))
    assert r.status_code == 409
    assert balance(client, token, acc) == 0
    with app.app_context():
        kinds = [p.kind for p in db.session.scalars(select(Posting).order_by(Posting.id))]
        assert kinds == ["topup", "reversal"]  # the original stays
        assert ledger.verify() == []


def test_more_energy_after_settlement_updates_one_pending_adjustment(app, client, admin,
                                                                     alley_with_pile):
    from chargers.models import Pile
    from chargers.services.charging import sessions

    _, token = admin
    make_account(client, token, ["C-1"], topup=1000)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        s = finished("P-1", "m", "C-1", 60, 1000, status="timeout")
        db.session.commit()
        settlement.settle(NOW)
        pile = db.session.get(Pile, "P-1")
        for wh in (1200, 1300):
            sessions.on_meter(pile, sessions.Reading(
                1, "m", 100.0, wh, None, None, None, T0 + timedelta(minutes=70), NOW, "device"))
            db.session.commit()
        adjs = db.session.scalars(select(Adjustment)).all()
        assert len(adjs) == 1 and adjs[0].delta_cents == 30 and adjs[0].status == "pending"
        assert db.session.get(ChargingSession, s.id).amount_cents == 100


def test_changing_the_alley_price_adds_a_tariff_version_from_now(app, client, admin,
                                                                 alley_with_pile):
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"tariff_cents_per_kwh": 70},
                     headers=bearer(token))
    assert r.status_code == 200
    with app.app_context():
        from chargers.services.devices import alleys

        alley = alleys.find_alley("lane")
        new, first = tariffs.versions(alley)
        assert (new.electricity_cents_per_kwh, first.electricity_cents_per_kwh) == (
            70, app.config["DEFAULT_TARIFF_CENTS_PER_KWH"])
        assert tariffs.in_force(alley, first.effective_from) == first  # the past keeps its price
