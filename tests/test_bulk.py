"""chargers.models.bulk writes what the ORM would, on SQLite (executemany) and on
PostgreSQL (one statement over json_to_recordset; COPY for an insert without RETURNING):
typed values (UTC datetimes, JSON, NULLs, text with quotes), RETURNING by key,
`col = col + delta`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from chargers import create_app
from chargers.extensions import db
from chargers.models import ChargingSession, LedgerAccount, Posting, bulk
from chargers.services import onboarding, users
from chargers.services.billing import ledger
from chargers.services.devices import alleys, piles
from chargers.settings import AlleyDefaults

from .pg_schema import throwaway_schema

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def app(request, tmp_path):
    def make(url):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "MQTT_URL": ""},
                         config_name="testing")
        with app.app_context():
            db.create_all()
            admin = users.create_user("root", "correct-horse-battery", "admin")
            onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"), AlleyDefaults(),
                                by=admin)
            piles.register_pile(admin, piles.PileInput(id="P-1", alley="lane", ports=2))
            db.session.commit()
            yield app
            db.session.remove()
            db.engine.dispose()

    if request.param == "sqlite":
        yield from make(f"sqlite:///{tmp_path / 'bulk.sqlite'}")
    else:
        with throwaway_schema("chargers_bulk") as url:
            yield from make(url)


def test_insert_update_and_returning_match_the_orm(app):
    rows = [{"pile_id": "P-1", "port": 1, "session_ref": f's"{i}\\', "card": None,
             "status": "stopped", "started_at": T + timedelta(minutes=i),
             "ended_at": T + timedelta(minutes=i + 30), "energy_wh": 0.1 * i,
             "time_source": "device", "created_at": T} for i in range(5)]
    bulk.insert_many(ChargingSession.__table__, rows)
    ids = db.session.scalars(select(ChargingSession.id).order_by(ChargingSession.id)).all()
    bill = {"rules": ["cap"], "quantity": "1.5", "text": 'a "quoted" \\ 元'}
    bulk.update_many(ChargingSession.__table__, [
        {"id": i, "settled_at": T, "amount_cents": n, "bill": dict(bill, n=n),
         "tier_evidence": None, "billing": "charged"} for n, i in enumerate(ids)],
        ("settled_at", "amount_cents", "bill", "tier_evidence", "billing"))
    back = bulk.insert_many(Posting.__table__, [
        {"key": f"charge:{i}", "kind": "charge", "alley_id": 1, "session_id": i,
         "reverses_id": None, "method": None, "receipt": None, "reason": "",
         "created_at": T, "created_by": None} for i in ids], returning=("key", "id"))
    db.session.commit()
    assert sorted(k for k, _ in back) == sorted(f"charge:{i}" for i in ids)
    assert dict(back) == dict(db.session.execute(select(Posting.key, Posting.id)).all())
    got = db.session.scalars(select(ChargingSession).order_by(ChargingSession.id)).all()
    for n, s in enumerate(got):
        assert s.session_ref == f's"{n}\\' and s.energy_wh == pytest.approx(0.1 * n)
        assert s.started_at == T + timedelta(minutes=n) and s.settled_at == T
        assert s.bill == dict(bill, n=n) and s.tier_evidence is None
        assert (s.amount_cents, s.billing, s.card) == (n, "charged", None)


def test_insert_keeps_control_characters_and_json_and_a_clash_raises_as_an_insert(app):
    """On PostgreSQL rows without RETURNING go by COPY: tabs, newlines, backslashes and
    NULs-free text, JSON and NULL arrive as given; a unique clash is SQLAlchemy's
    IntegrityError (the ingest then retries its batch message by message)."""
    from sqlalchemy.exc import IntegrityError

    row = {"pile_id": "P-1", "port": 1, "session_ref": "a\tb\nc\\d\r", "card": None,
           "status": "stopped", "started_at": T, "ended_at": None, "energy_wh": 1.5,
           "time_source": "device", "created_at": T,
           "bill": {"text": "tab\there\nnew \\ 元", "n": [1, None]}}
    bulk.insert_many(ChargingSession.__table__, [row])
    db.session.commit()
    got = db.session.scalars(select(ChargingSession)).one()
    assert got.session_ref == "a\tb\nc\\d\r" and got.bill == row["bill"]
    assert got.ended_at is None and got.card is None and got.started_at == T
    with pytest.raises(IntegrityError):
        bulk.insert_many(ChargingSession.__table__, [row])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ChargingSession)) == 1


def test_insert_json_null_and_dates_like_the_other_writes_and_it_rolls_back(app):
    """A JSON column's None is SQL NULL and a date inside JSON is ISO text, on every
    path (COPY, RETURNING, SQLite's executemany); rows written go with the transaction's
    rollback."""
    def row(ref, bill):
        return {"pile_id": "P-1", "port": 1, "session_ref": ref, "card": None,
                "status": "stopped", "started_at": T, "ended_at": None, "energy_wh": 1.0,
                "time_source": "device", "created_at": T, "bill": bill}

    bulk.insert_many(ChargingSession.__table__, [row("copy-none", None),
                                                 row("copy-date", {"at": T})])
    bulk.insert_many(ChargingSession.__table__, [row("ret-none", None)], returning=("id",))
    db.session.commit()
    nulls = db.session.scalars(select(ChargingSession.session_ref).where(
        ChargingSession.bill.is_(None)).order_by(ChargingSession.session_ref)).all()
    assert nulls == ["copy-none", "ret-none"]
    dated = db.session.scalars(select(ChargingSession).where(
        ChargingSession.session_ref == "copy-date")).one()
    assert dated.bill == {"at": T.isoformat()}
    bulk.insert_many(ChargingSession.__table__, [row("rolled-back", None)])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ChargingSession)) == 3


def test_update_adds_deltas(app):
    acc = ledger.account(1, "electricity")
    other = ledger.account(1, "service")
    db.session.flush()
    ledger.apply_deltas({acc.id: 7, other.id: -3})
    ledger.apply_deltas({acc.id: 5})
    db.session.commit()
    assert (db.session.get(LedgerAccount, acc.id).balance_cents,
            db.session.get(LedgerAccount, other.id).balance_cents) == (12, -3)


def test_upsert_add_creates_then_adds(app):
    from chargers.models import IngestCounter

    table = IngestCounter.__table__
    bulk.upsert_add(table, [{"key": "b", "count": 2, "last_at": T},
                            {"key": "a", "count": 1, "last_at": T}],
                    key="key", add=["count"], set_=["last_at"])
    later = T + timedelta(minutes=1)
    bulk.upsert_add(table, [{"key": "a", "count": 5, "last_at": later},
                            {"key": "c", "count": 3, "last_at": later}],
                    key="key", add=["count"], set_=["last_at"])
    got = {c.key: (c.count, c.last_at) for c in db.session.scalars(select(IngestCounter))}
    assert got == {"a": (6, later), "b": (2, T), "c": (3, later)}


def test_one_of_matches_in(app):
    from chargers.models import Pile

    piles.register_pile(users.get_user("root"),
                        piles.PileInput(id="P-2", alley="lane", ports=2))
    for wanted in (["P-1"], ["P-2", "P-1", "P-2"], [], ["nope"]):
        got = set(db.session.scalars(select(Pile.id).where(bulk.one_of(Pile.id, wanted))))
        assert got == set(wanted) - {"nope"}


def test_pairs_in_matches_exact_pairs(app):
    from chargers.models import ProcessedMessage

    db.session.add_all([ProcessedMessage(pile_id=p, msg_id=m, kind="status", received_at=T)
                        for p, m in [("P-1", "a"), ("P-1", "b"), ("P-2", "a")]])
    db.session.flush()
    cols = (ProcessedMessage.pile_id, ProcessedMessage.msg_id)
    for wanted in ([("P-1", "a")], [("P-1", "b"), ("P-2", "b"), ("P-2", "a")], [],
                   [("P-1", 'x"\\')]):
        got = set(db.session.execute(select(*cols).where(bulk.pairs_in(cols, wanted))).all())
        assert got == set(wanted) & {("P-1", "a"), ("P-1", "b"), ("P-2", "a")}
