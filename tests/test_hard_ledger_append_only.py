"""The ledger is append-only in the database (issue 20, item 5): after `flask db
upgrade` (SQLite and PostgreSQL) and in tables made by create_all, an UPDATE or DELETE
of a posting or an entry is refused; `billing verify` also finds a billed session
without its charge posting (or a posting without its session) and a top-up or refund
without its record (or a record without its posting)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError

from chargers import create_app
from chargers.extensions import db
from chargers.models import ChargingSession, LedgerEntry, MoneyAudit, Posting, utcnow
from chargers.services import onboarding, users
from chargers.services.billing import accounts as residents
from chargers.services.billing import ledger
from chargers.services.devices import alleys
from chargers.settings import AlleyDefaults

from .billing_support import finished, set_tariff
from .pg_schema import throwaway_schema
from .test_migrations import flask_db_upgrade

TAMPER = ["UPDATE ledger_entries SET amount_cents = 0",
          "DELETE FROM ledger_entries",
          "UPDATE postings SET reason = 'oops'",
          "DELETE FROM postings"]


def refused_after_upgrade(url: str, tmp_path) -> None:
    flask_db_upgrade(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "MQTT_URL": "",
                      "EMBEDDED_BROKER_FILE": str(tmp_path / "b.json")}, config_name="testing")
    with app.app_context():
        admin = users.create_user("root", "correct-horse-battery", "admin")
        onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"), AlleyDefaults(),
                            by=admin)
        acc = residents.create_account(admin, residents.AccountInput(alley="lane", cards=["A"]),
                                       utcnow())
        residents.top_up(admin, acc.id, 500, "cash", None, utcnow())
        for stmt in TAMPER:
            with pytest.raises(DatabaseError, match="append-only"):
                db.session.execute(text(stmt))
            db.session.rollback()
        assert db.session.execute(text("SELECT sum(amount_cents), count(*) FROM ledger_entries")
                                  ).one() == (0, 2)
        assert ledger.verify() == []
        db.session.remove()
        db.engine.dispose()


def test_sqlite_refuses_updates_and_deletes_after_upgrade(tmp_path):
    refused_after_upgrade(f"sqlite:///{tmp_path / 'm.sqlite'}", tmp_path)


def test_postgresql_refuses_updates_and_deletes_after_upgrade(tmp_path):
    with throwaway_schema("chargers_ledger") as url:
        refused_after_upgrade(url, tmp_path)


def test_create_all_tables_refuse_too_and_verify_finds_missing_records(admin, alley_with_pile,
                                                                       app_ctx):
    user, _ = admin
    user = db.session.merge(user)
    set_tariff("lane", electricity_cents_per_kwh=100)
    acc = residents.create_account(user, residents.AccountInput(alley="lane", cards=["A"]),
                                   utcnow())
    residents.top_up(user, acc.id, 5000, "cash", None, utcnow())
    residents.refund(user, acc.id, 1000, "cash", None, utcnow())
    s = finished("P-1", "s1", "A", 60, 2000)
    from chargers.services.billing import settlement

    settlement.settle(utcnow())
    assert ledger.verify() == []
    for stmt in (update(LedgerEntry).values(amount_cents=1), delete(Posting)):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(stmt)
        db.session.rollback()
    # A billed session whose charge posting is missing (made here by marking an unbilled
    # session as charged), and a top-up whose audit record is missing.
    other = finished("P-1", "s2", "A", 60, 1000)
    db.session.execute(update(ChargingSession).where(ChargingSession.id == other.id)
                       .values(billing="charged", settled_at=utcnow()))
    db.session.execute(delete(MoneyAudit).where(MoneyAudit.action == "money.topup"))
    db.session.add(MoneyAudit(action="money.refund", alley_id=acc.alley_id, at=utcnow(),
                              data={"account": acc.id, "amount_cents": 77}))
    db.session.commit()
    problems = ledger.verify()
    assert any(f"session {other.id}: 0 charge postings, not 1" in p
               for p in problems), problems
    assert any("topup of 5000" in p and "posted, no record" in p for p in problems), problems
    assert any("refund of 77" in p and "recorded, no posting" in p for p in problems), problems
    assert not any(f"session {s.id}:" in p for p in problems), problems
