"""Time left on the residents' pages: power and energy so far, the estimate from the
session's curve or the alley's history, the alley's "next port expected free"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from chargers.extensions import db
from chargers.models import ChargingSession, MeterSample, Pile

from .webtools import set_ports


def add_session(ref, port, start, curve, *, status="active", ended=None, reason=None):
    """A session on P-1 with (minutes after start, W, Wh) meter samples."""
    s = ChargingSession(pile_id="P-1", port=port, session_ref=ref, status=status,
                        started_at=start, ended_at=ended, stop_reason=reason,
                        energy_wh=curve[-1][2] if curve else 0.0)
    db.session.add(s)
    db.session.flush()
    for m, w, wh in curve:
        db.session.add(MeterSample(pile_id="P-1", port=port, session_id=s.id,
                                   ts=start + timedelta(minutes=m), power_w=w, energy_wh=wh))
    return s


def test_tapering_port_shows_power_energy_and_time_left(app, client, alley_with_pile):
    now = datetime.now(UTC)
    with app.app_context():
        set_ports("P-1", ["charging", "charging", "charging", "charging"], minutes_ago=110)
        start = now - timedelta(minutes=110)
        # Port 1 tapering: ~27 min left from its own curve.
        add_session("s1", 1, start, [(60, 401.0, 400.0), (80, 285.0, 524.0), (90, 203.0, 565.0),
                                     (100, 142.0, 594.0), (110, 101.0, 614.0)])
        # Port 2 flat: no history in the alley, so no basis.
        add_session("s2", 2, start, [(60, 400.0, 400.0), (110, 401.0, 734.0)])
        db.session.commit()
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    rows = re.findall(r'<li class="port-row".*?</li>', html, re.S)
    assert "101 W · 0.61 kWh so far" in rows[0]
    m = re.search(r"About (\d+) min left", rows[0])
    assert m and 22 <= int(m.group(1)) <= 40
    assert "401 W · 0.73 kWh so far" in rows[1]
    assert "No basis yet to estimate when it will be done" in rows[1]
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    m = re.search(r'<p class="next-free">Next port expected free in about (\d+) min</p>', html)
    assert m and 22 <= int(m.group(1)) <= 40
    zh = client.get("/a/lane?lang=zh").get_data(as_text=True)
    assert "预计" in zh
    api = client.get("/api/v1/alleys/lane").json
    assert 22 <= api["next_free_minutes"] <= 40
    p1, p2 = api["piles"][0]["ports"][:2]
    assert p1["time_left"]["basis"] == "curve" and p1["time_left"]["power_w"] == 101.0
    assert p2["time_left"] == {"minutes": None, "basis": "none", "power_w": 401.0,
                               "energy_wh": 734.0}


def test_history_of_similar_full_charges_is_a_basis(app, client, alley_with_pile):
    now = datetime.now(UTC)
    with app.app_context():
        set_ports("P-1", ["charging", "available", "available", "available"], minutes_ago=20)
        for i in range(4):  # four full charges last week: ~600 Wh in ~2 h at 400 W peak
            start = now - timedelta(days=7, hours=i)
            add_session(f"old{i}", 2, start, [(10, 400.0, 60.0), (120, 40.0, 600.0)],
                        status="stopped", ended=start + timedelta(minutes=120), reason="full")
        add_session("s1", 1, now - timedelta(minutes=20),
                    [(5, 390.0, 30.0), (15, 400.0, 95.0), (20, 401.0, 128.0)])
        db.session.commit()
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    m = re.search(r"About (?:(\d+) min|(\d+)h (\d+)m) left", html)
    assert m, html
    minutes = int(m.group(1)) if m.group(1) else int(m.group(2)) * 60 + int(m.group(3))
    assert 60 <= minutes <= 120
    # Ports are free: no "next free" line.
    assert 'class="next-free"' not in client.get("/a/lane").get_data(as_text=True)


def test_nothing_free_and_no_basis_is_said_plainly(app, client, alley_with_pile):
    with app.app_context():
        set_ports("P-1", ["charging", "occupied", "finishing", "charging"])
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert "No basis yet to estimate when the next port will be free" in html


def test_a_finished_port_past_its_overstay_asks_to_move_the_bike(app, client, alley_with_pile):
    """Issue 10's overstay on the residents' finished port: 'full N min ago, bike still
    plugged in', then the nudge once the overstay job has recorded it."""
    from chargers.services.maintenance import overstay
    from chargers.settings import OverstayRule

    with app.app_context():
        set_ports("P-1", ["finishing", "finishing", "available", "available"], minutes_ago=45)
        db.session.get(Pile, "P-1").ports[1].status_since = datetime.now(UTC)
        ended_full("P-1", 1, 45)
        ended_full("P-1", 2, 0)
        db.session.commit()
        # port 1 only: port 2 finished just now
        assert overstay.scan(OverstayRule(minutes=40)) == (1, 0, 0)
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    assert html.count("bike still plugged in") == 2
    assert html.count("please move your bike") == 1
    assert re.search(r'class="overstay">Full for 4\d min, please move your bike<', html)
    alley = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert alley.count("please move your bike") == 1
    assert "充满 4" in client.get("/p/P-1?lang=zh").get_data(as_text=True)


def ended_full(pile_id: str, port: int, minutes_ago: int) -> None:
    """The port's last session, ended `full` by the pile `minutes_ago` (no commit)."""
    end = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    db.session.add(ChargingSession(pile_id=pile_id, port=port, session_ref=f"full-{port}",
                                   status="stopped", started_at=end - timedelta(hours=2),
                                   ended_at=end, energy_wh=900.0, stop_reason="full"))
