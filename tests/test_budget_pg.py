"""Two workers answering authorizes at once on PostgreSQL never admit past the alley's
limit: admission is serialized per alley (a transaction advisory lock). A private
Mosquitto hands the piles' messages to the two workers through a shared
subscription; 40 cards are presented at 10 v1.1 piles at the same moment."""

from __future__ import annotations

import json
import threading

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Authorization
from tests.budget_support import account, energy_tariff, feeder, register_piles
from tests.ingest_support import Pile, Worker, body, poll
from tests.pg_schema import on_postgresql

PILES, PORTS = 10, 4


pg_schema, app_config = on_postgresql("chargers_budget")


def test_two_workers_do_not_admit_past_the_limit(app, client, admin, mosquitto, tmp_path):
    _, token = admin
    r = client.post("/api/v1/alleys", json={"slug": "lane", "name": "Lane"},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201
    r = client.post("/api/v1/piles", json={"id": "P-1", "alley": "lane", "ports": PORTS},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201
    register_piles(client, token, PILES, ports=PORTS)
    energy_tariff(app)
    cards = [f"K{i:02d}" for i in range(PILES * PORTS)]
    for c in cards:
        account(client, token, [c], balance=100_000)
    feeder(client, token, 4 * 800, 0)  # room for exactly four at the 800 W port limit
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    workers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        w = Worker(url, mosquitto, tmp_path / name, WORKER_NAME=name, MQTT_SHARE_GROUP="budget")
        w.start()
        workers.append(w)
    piles = []
    try:
        for w in workers:
            w.wait_log("subscribed to $share/budget/", timeout=60)
        piles = [Pile(mosquitto, f"P-{i}") for i in range(1, PILES + 1)]
        for p in piles:
            p.send("boot", seq=0, ports=PORTS, features=["config", "authorize", "start"])
            for n in range(1, PORTS + 1):
                p.send("status", seq=n, port=n, status="occupied")
        poll(lambda: _booted(app), timeout=30, what="piles booted")
        go = threading.Event()

        def present(p: Pile, k: int) -> None:
            go.wait()
            for n in range(1, PORTS + 1):
                data = body("authorize", seq=PORTS + n, port=n, card=cards[k * PORTS + n - 1])
                p.client.publish(p.topic("authorize"), json.dumps(data).encode(), qos=1)

        threads = [threading.Thread(target=present, args=(p, k)) for k, p in enumerate(piles)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join()
        recs = poll(lambda: (lambda r: r if len(r) == PILES * PORTS else None)(_records(app)),
                    timeout=60, what="every authorize answered")
        accepted = [r for r in recs if r.result == "accepted"]
        queued = sorted(r.position for r in recs if r.result == "queued")
        assert len(accepted) == 4, [(r.pile_id, r.port, r.headroom_w) for r in accepted]
        assert queued == list(range(1, PILES * PORTS - 4 + 1))  # one place each, no gap
        for w in workers:  # both answered some: they really ran side by side
            assert "authorize P-" in w.output(), w.output()[-2000:]
    finally:
        for p in piles:
            p.close()
        for w in workers:
            w.stop("term", timeout=60)
        for w in workers:
            assert "Traceback" not in w.output(), w.output()[-3000:]


def _booted(app) -> bool:
    from chargers.models import Pile as PileRow
    with app.app_context():
        rows = list(db.session.scalars(select(PileRow)))
        return len(rows) == PILES and all("authorize" in (p.features or []) for p in rows)


def _records(app) -> list[Authorization]:
    with app.app_context():
        rows = list(db.session.scalars(select(Authorization)))
        for r in rows:
            db.session.expunge(r)
        return rows
