"""A jump in a pile's `seq` is possible data loss: recorded, and a staff alert that
does not take the pile's ports away from residents."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import Alert, Pile
from tests.ingest_support import incoming

pytestmark = pytest.mark.usefixtures("alley_with_pile")


def test_seq_gap_raises_one_data_loss_alert_that_keeps_ports_free(app, client):
    with app.app_context():
        handlers.process([incoming("boot", seq=0)])
        pile = db.session.get(Pile, "P-1")
        pile.online = True
        for p in pile.ports:
            p.status = "available"
        db.session.commit()

        handlers.process([incoming("heartbeat", seq=1), incoming("heartbeat", seq=5)])
        handlers.process([incoming("heartbeat", seq=9)])

        alerts = db.session.scalars(select(Alert).where(Alert.code == "data_loss")).all()
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert.port is None and alert.status == "active" and alert.severity == "minor"
        assert alert.count == 2 and alert.value == 3 + 3
    # A link problem, not a hardware fault: residents still see the ports free.
    ports = client.get("/api/v1/alleys/lane").json["piles"][0]["ports"]
    assert all(p["free"] for p in ports)
