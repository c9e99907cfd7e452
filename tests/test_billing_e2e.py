"""The balance guard end to end: a real private broker, the real worker subprocess and a
simulated pile (a paho client logged in with its secret, hearing its cmd topic). The
card's balance runs out mid-session: the pile receives `stop`, and settlement charges
the session no more than the balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import ChargingSession
from tests.ingest_support import Pile as PileClient
from tests.ingest_support import poll, ts

from .billing_support import set_tariff
from .conftest import bearer


@pytest.fixture
def pile(broker, alley_with_pile):
    p = PileClient(broker, "P-1", alley_with_pile, hear_cmd=True)
    yield p
    p.close()


def test_card_runs_out_mid_session_and_the_pile_is_stopped(app, client, admin, worker, pile):
    _, token = admin
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["C-9"],
                                              "kind": "prepaid", "phone": "13800001234"},
                    headers=bearer(token))
    acc = r.json["id"]
    r = client.post(f"/api/v1/accounts/{acc}/topups", json={"amount_cents": 30, "method": "cash"},
                    headers=bearer(token))
    assert r.status_code == 201 and r.json["balance_cents"] == 30
    with app.app_context():
        # 10 fen a minute of service, 100 fen a kWh
        set_tariff("lane", electricity_cents_per_kwh=100, service_scheme="flat_hour",
                   service_cents=600, step_minutes=1)

    start = datetime.now(UTC) - timedelta(minutes=2)  # the pile has charged 2 min: 20 fen
    pile.online()
    pile.send("boot", seq=0, ports=4)
    pile.send("session", seq=1, event="start", port=2, session="S-9", card="C-9",
              meter_wh=1000.0, ts=ts(start))
    pile.send("meter", seq=2, port=2, session="S-9", power_w=300.0, energy_wh=10.0)

    # the worker's guard asks for `stop` once the running cost reaches 30 fen (≈3 min)
    heard = poll(lambda: [c for c in pile.commands() if c["action"] == "stop"] or None,
                 timeout=60, what="a stop command on the pile's cmd topic")
    assert heard[0]["port"] == 2 and len(heard) == 1
    with app.app_context():
        s = db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == "S-9"))
        assert s.guard_reason == "balance" and s.guard_stop_at is not None

    # the pile obeys: ack, then the session stop
    pile.send("ack", seq=3, cmd=heard[0]["id"], result="accepted")
    pile.send("session", seq=4, event="stop", port=2, session="S-9", energy_wh=20.0,
              reason="remote")

    def stopped():
        with app.app_context():
            s = db.session.scalar(select(ChargingSession)
                                  .where(ChargingSession.session_ref == "S-9"))
            return s if s.status == "stopped" else None

    poll(stopped, timeout=20, what="the session stopped")
    with app.app_context():
        all_jobs()["settle"].func(datetime.now(UTC), None)
        s = db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == "S-9"))
        assert s.amount_cents is not None
        assert s.amount_cents == s.energy_cents + s.service_cents
        # The stop takes a moment to land: what ran past the balance is owed, not dropped.
        assert s.shortfall_cents == max(0, s.amount_cents - 30)
    r = client.get(f"/api/v1/accounts/{acc}", headers=bearer(token))
    assert r.json["balance_cents"] == 30 - s.amount_cents
    assert r.json["debt_cents"] == s.shortfall_cents
