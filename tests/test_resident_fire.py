"""Fire first: a smoke or over-temperature alarm on one port makes the whole pile
unsafe for residents (pages, legend, public API) and the automatic cut-off covers the
whole pile."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.models import Command, Pile
from chargers.services.alerts import lifecycle as alerts

from .webtools import set_ports


def smoke(app, port=2, code="smoke"):
    with app.app_context():
        set_ports("P-1", ["available", "available", "charging", "available"])
        now = datetime.now(UTC)
        alerts.on_fault(db.session.get(Pile, "P-1"), port, code, True, None, None, now, now,
                        rules=settings.alerts(app.config))
        db.session.commit()


def test_smoke_on_one_port_leaves_no_port_free_anywhere(app, client, alley_with_pile):
    smoke(app)
    r = client.get("/api/v1/alleys/lane")
    [pile] = r.json["piles"]
    assert pile["free"] == 0 and r.json["free"] == 0
    assert pile["unsafe"] is True and pile["fire"] == [{"port": 2, "code": "smoke"}]
    assert {p["state"] for p in pile["ports"]} == {"fault"}
    assert r.json["counts"]["fault"] == 4 and r.json["counts"]["free"] == 0

    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert 'class="fire-banner' in html and "smoke alarm" in html
    assert "Keep away from the whole pile" in html
    assert re.search(r'<li class="fault">.*?<b>4</b>', html)  # the legend counts it
    html = client.get("/p/P-1?lang=zh").get_data(as_text=True)  # the QR page, in Chinese
    assert 'class="fire-banner' in html and "烟雾报警" in html


def test_port_reported_faulted_with_smoke_is_enough(app, client, alley_with_pile):
    with app.app_context():
        set_ports("P-1", ["available", "faulted", "available", "available"])
        db.session.get(Pile, "P-1").ports[1].error = "over_temperature"
        db.session.commit()
    r = client.get("/api/v1/alleys/lane").json
    assert r["free"] == 0 and r["piles"][0]["fire"] == [{"port": 2, "code": "over_temperature"}]
    assert "overheating alarm" in client.get("/p/P-1?lang=en").get_data(as_text=True)


def test_other_faults_keep_the_rest_of_the_pile_free(app, client, alley_with_pile):
    smoke(app, code="over_current")
    r = client.get("/api/v1/alleys/lane").json
    assert r["free"] == 2 and r["piles"][0]["unsafe"] is False
    assert 'class="fire-banner' not in client.get("/a/lane").get_data(as_text=True)


def test_fire_cut_off_covers_the_whole_pile(app, alley_with_pile):
    smoke(app, port=2, code="over_temperature")
    with app.app_context():
        cmds = db.session.scalars(select(Command)).all()
        assert sorted((c.action, c.port or 0) for c in cmds) == [
            ("disable", 0), ("stop", 1), ("stop", 2), ("stop", 3), ("stop", 4)]
    smoke(app, port=3, code="over_current")  # not a fire code: that port only
    with app.app_context():
        assert db.session.query(Command).count() == 5  # over_current is major: no cut-off


def test_every_port_of_an_unsafe_pile_counts_from_the_alarm(app, client, alley_with_pile):
    smoke(app)
    ports = client.get("/api/v1/alleys/lane").json["piles"][0]["ports"]
    with app.app_context():
        from chargers.models import Alert
        raised = db.session.scalar(select(Alert.raised_at))
    from chargers.web.api.common import iso
    assert {p["since"] for p in ports} == {iso(raised)}  # not each port's old status time
