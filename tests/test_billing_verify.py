"""`flask billing verify` catches each kind of tampering the auditor named (issue 22), on
SQLite and on PostgreSQL: a top-up inflated on both sides with the cached balances
adjusted, a deleted charge posting, 10 fen moved from electricity to service inside a
charge, a settled session marked unsettled, and a month close that disagrees."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update

from chargers.extensions import db
from chargers.models import (
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    MonthClose,
    Posting,
    PostingMonth,
)
from chargers.models.billing import APPEND_ONLY_TABLES
from chargers.services.billing import accounts, ledger, monthly_close, settlement

from .billing_support import finished, set_tariff
from .pg_schema import on_sqlite_and_postgresql
from .test_billing_rules import NOW, account, session, staff

# On SQLite, then on PostgreSQL (a throwaway schema).
app_config = on_sqlite_and_postgresql("chargers_verify")


def _books(app, admin):
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="flat_hour",
                   service_cents=40)
        aid = account(admin, ["C-1"], topup=1000)
        finished("P-1", "v1", "C-1", 60, 1000)
        finished("P-1", "v2", "C-1", 30, 500)
        db.session.commit()
        settlement.settle(NOW)
        accounts.top_up(staff(admin), aid, 200, "cash", None, NOW)
        monthly_close.close_due(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
        assert ledger.verify() == []
        _lift_guards()
        return aid


def _lift_guards() -> None:
    """The tamperer owns the database: the append-only triggers (models/billing.py) go
    first, so that what `verify` must still catch can be done at all."""
    conn = db.session.connection()
    for table in APPEND_ONLY_TABLES:
        if conn.dialect.name == "postgresql":
            for name in (f"{table}_append_only", f"{table}_no_truncate"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        else:
            for op in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    db.session.commit()


def _move(entry_id: int, delta: int) -> None:
    """Tamper: change an entry and its account's cached balance alike."""
    e = db.session.get(LedgerEntry, entry_id)
    db.session.execute(update(LedgerEntry).where(LedgerEntry.id == entry_id)
                       .values(amount_cents=LedgerEntry.amount_cents + delta))
    db.session.execute(update(LedgerAccount).where(LedgerAccount.id == e.account_id)
                       .values(balance_cents=LedgerAccount.balance_cents + delta))
    db.session.commit()


def _entries(key: str) -> dict[str, int]:
    return {kind: eid for eid, kind in db.session.execute(
        select(LedgerEntry.id, LedgerAccount.kind).join(Posting).join(LedgerAccount)
        .where(Posting.key == key))}


def test_verify_catches_a_top_up_inflated_on_both_sides(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        key = db.session.scalar(select(Posting.key).where(Posting.kind == "topup")
                                .order_by(Posting.id))
        ids = _entries(key)
        _move(ids["resident"], 5000)
        _move(ids["cash"], -5000)
        assert ledger.verify_balances() == []  # balanced and cached: only the chain sees it
        assert any(key in p and "changed" in p for p in ledger.verify())


def test_verify_catches_a_deleted_charge_posting(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        s = session("v1")
        p = db.session.scalar(select(Posting).where(Posting.key == ledger.charge_key(s.id)))
        for e in p.entries:
            db.session.execute(update(LedgerAccount).where(LedgerAccount.id == e.account_id)
                               .values(balance_cents=LedgerAccount.balance_cents - e.amount_cents))
        db.session.execute(delete(PostingMonth).where(PostingMonth.posting_id == p.id))
        db.session.execute(delete(LedgerEntry).where(LedgerEntry.posting_id == p.id))
        db.session.execute(delete(Posting).where(Posting.id == p.id))
        db.session.commit()
        problems = ledger.verify()
        assert f"session {s.id}: 0 charge postings, not 1" in problems
        assert any("chain broken" in p for p in problems)


def test_verify_catches_10_fen_moved_from_electricity_to_service(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        s = session("v1")
        ids = _entries(ledger.charge_key(s.id))
        _move(ids["electricity"], -10)
        _move(ids["service"], 10)
        problems = ledger.verify()
        assert f"session {s.id}: electricity 60 on the session, 50 in its charge posting" in problems
        assert any("changed after posting" in p for p in problems)
        assert any("electricity_cents" in p for p in problems)  # and the close disagrees


def test_verify_catches_a_settled_session_marked_unsettled(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        s = session("v2")
        db.session.execute(update(ChargingSession).where(ChargingSession.id == s.id)
                           .values(settled_at=None))
        db.session.commit()
        assert f"session {s.id}: charged but marked unsettled" in ledger.verify()


def test_verify_catches_a_month_close_that_disagrees(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        db.session.execute(update(MonthClose).values(
            service_cents=MonthClose.service_cents + 1))
        db.session.commit()
        assert any("service_cents" in p for p in ledger.verify())




def test_concurrent_writers_keep_one_chain(app, admin, alley_with_pile):
    """Top-ups from two threads at once (on PostgreSQL: two connections) never chain to
    the same previous posting: the chain verifies, one posting after another."""
    import threading

    with app.app_context():
        ids = [account(admin, [f"T{i}"]) for i in range(2)]
        user_id = staff(admin).id
    errors: list = []

    def top_ups(acc_id: int):
        try:
            with app.app_context():
                from chargers.models import User

                for _ in range(15):
                    accounts.top_up(db.session.get(User, user_id), acc_id, 10, "cash", None,
                                    NOW)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=top_ups, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            assert errors == []
        ok = 30 - 15 * len(errors)
        assert db.session.scalar(select(func.count()).select_from(Posting)) >= ok
        assert ledger.verify() == []


def test_verify_catches_a_top_ups_method_or_receipt_rewritten(app, admin, alley_with_pile):
    _books(app, admin)
    with app.app_context():
        key = db.session.scalar(select(Posting.key).where(Posting.kind == "topup"))
        db.session.execute(update(Posting).where(Posting.key == key)
                           .values(method="wechat", receipt="R-FAKE"))
        db.session.commit()
        assert any(key in p and "changed" in p for p in ledger.verify())
