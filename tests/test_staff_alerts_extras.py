"""Staff alerts as a new user finds them: the pile's location on the list and detail,
readings with unit and meaning, chips counting what the current filter holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chargers import settings
from chargers.extensions import db
from chargers.models import Alert, Pile
from chargers.services.alerts import lifecycle as alerts

from .conftest import bearer
from .webtools import login


def test_location_reading_and_chips_of_the_current_filter(app, client, admin, alley_with_pile):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    client.post("/api/v1/piles", json={"id": "O-1", "alley": "other", "ports": 2},
                headers=bearer(token))
    with app.app_context():
        db.session.get(Pile, "P-1").location_note = "东门车棚"
        now = datetime.now(UTC)
        alerts.on_fault(db.session.get(Pile, "P-1"), 1, "over_current", True, 16.4, None, now, now,
                        rules=settings.alerts(app.config))
        alerts.on_fault(db.session.get(Pile, "O-1"), 1, "over_temperature", True, 78.5, None, now, now,
                        rules=settings.alerts(app.config))
        alerts.on_fault(db.session.get(Pile, "O-1"), 2, "meter_failure", True, None, None, now, now,
                        rules=settings.alerts(app.config))
        db.session.commit()
    login(client, "root")
    html = client.get("/staff/alerts?alley=lane&lang=en").get_data(as_text=True)
    assert "东门车棚" in html and "16.4 A (current)" in html
    counts = re.search(r'<p class="alert-counts".*?</p>', html, re.S).group(0)
    assert re.search(r">Critical 0<", counts) and re.search(r">Major 1<", counts)
    assert "1 unacknowledged" in counts
    html = client.get("/staff/alerts?lang=en").get_data(as_text=True)
    counts = re.search(r'<p class="alert-counts".*?</p>', html, re.S).group(0)
    assert re.search(r">Critical 1<", counts) and re.search(r">Minor 1<", counts)
    feed = client.get("/staff/alerts/feed?alley=other&lang=en").json
    assert ">Major 0<" in feed["counts_html"] and feed["counts"]["major"] == 1  # nav: all
    with app.app_context():
        hot = db.session.scalar(db.select(Alert.id).where(Alert.code == "over_temperature"))
    detail = client.get(f"/staff/alerts/{hot}?lang=en").get_data(as_text=True)
    assert "78.5 °C (socket temperature)" in detail


def test_stop_and_disable_ask_first_with_the_charge_so_far(app, client, admin, alley_with_pile):
    from datetime import timedelta

    from chargers.models import ChargingSession

    from .webtools import set_ports

    with app.app_context():
        set_ports("P-1", ["available", "charging", "available", "available"])
        db.session.add(ChargingSession(pile_id="P-1", port=2, session_ref="s-1", status="active",
                                       started_at=datetime.now(UTC) - timedelta(minutes=75),
                                       energy_wh=512.0))
        db.session.commit()
    login(client, "root")
    html = client.get("/staff/piles/P-1/control?lang=en").get_data(as_text=True)
    assert ('data-confirm="Stop charging on port 2? Its charge has run 1h 15m and drawn '
            '0.51 kWh."') in html
    assert 'data-confirm="Disable port 1? It stays off until enabled. No charge is running."' in html
    # The page follows the commands by itself (live.js every 3 s).
    assert '<div data-live="3">' in html and 'src="/static/live.js"' in html


def test_device_message_page_names_the_pile_its_topic_names(app, client, admin):
    from chargers.models import Rejection
    from chargers.web.staff.ingest import pile_named_by

    assert pile_named_by("chargers/v1/JRX-006/meter", "chargers/v1") == "JRX-006"
    assert pile_named_by("chargers/v1/JRX-006/nonsense/x", "chargers/v1/") == "JRX-006"
    assert pile_named_by("elsewhere/JRX-006/meter", "chargers/v1") is None
    assert pile_named_by("chargers/v1/", "chargers/v1") is None
    with app.app_context():
        db.session.add_all([
            Rejection(reason="malformed", topic="chargers/v1/JRX-006/meter", pile_id=None,
                      detail="bad json"),
            Rejection(reason="bad_topic", topic="junk", pile_id=None, detail="x")])
        db.session.commit()
    login(client, "root")
    html = client.get("/staff/ingest?lang=en").get_data(as_text=True)
    assert '<span class="sub">JRX-006 · ' in html
    assert '<span class="sub">no pile named · ' in html
