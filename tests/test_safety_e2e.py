"""Pile configuration and the backend's limits end to end: a private Mosquitto, the
real worker subprocess, and simulated piles (paho clients logged in with their secret)
that hear their `cmd` topic: one with the v1.1 `config` feature, one without."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import ChargingSession
from tests.conftest import bearer
from tests.ingest_support import Pile, poll, ts
from tests.webtools import login


@pytest.fixture
def pile(broker, alley_with_pile):
    p = Pile(broker, "P-1", alley_with_pile, hear_cmd=True)
    yield p
    p.close()


def configs(p: Pile) -> list[dict]:
    return [c for c in p.commands() if c["action"] == "config"]


def test_config_is_pushed_on_boot_resent_until_reported_and_a_mismatch_is_shown(
        app, client, admin, start_worker, pile):
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"max_power_w": 600,
                                                                      "offline_policy": "reject"}},
                     headers=bearer(token))
    assert r.status_code == 200, r.json
    start_worker(CONFIG_RESEND_S="1")
    pile.online()
    pile.send("boot", ports=4, features=["config", "authorize"])
    first = poll(lambda: configs(pile), timeout=15, what="config on boot")[0]
    assert first["settings"]["max_power_w"] == 600 and first["settings"]["offline_policy"] == "reject"
    assert first["settings"]["max_session_s"] == 8 * 3600
    pile.send("ack", cmd=first["id"], result="accepted")  # acked, but never reported
    again = poll(lambda: [c for c in configs(pile) if c["id"] != first["id"]], timeout=30,
                 what="config sent again")[0]
    assert again["version"] == first["version"]
    # The pile applies it without the offline policy: 配置未生效 on the staff pile page.
    applied = {k: v for k, v in first["settings"].items() if k != "offline_policy"}
    pile.send("config", version=first["version"], settings=applied)
    poll(lambda: client.get("/api/v1/piles/P-1", headers=bearer(token)).json["config"]
         ["reported_version"] == first["version"], timeout=10, what="report stored")
    body = client.get("/api/v1/piles/P-1", headers=bearer(token)).json
    assert body["config"]["settings"] == applied and body["config"]["state"] == "mismatch"
    login(client, "root")
    page = client.get("/staff/piles/P-1/control?lang=zh").get_data(as_text=True)
    assert "配置未生效" in page and 'class="differs"' in page
    pile.send("config", version=first["version"], settings=first["settings"])
    poll(lambda: client.get("/api/v1/piles/P-1", headers=bearer(token)).json["config"]
         ["state"] == "applied", timeout=10, what="applied")
    page = client.get("/staff/piles/P-1/control?lang=zh").get_data(as_text=True)
    assert "配置未生效" not in page


def session_of(app, ref):
    with app.app_context():
        return db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == ref))


def test_a_v1_pile_gets_no_config_and_the_backend_stops_over_power_too_long_and_full(
        app, start_worker, pile):
    # The cards are not registered: the balance guard's grace is made long, so that the
    # stops recorded are the limits' and not a race with `unknown_card`.
    start_worker(BILLING_UNKNOWN_CARD_GRACE_S="86400")
    pile.online()
    pile.send("boot", ports=4)  # v1: no features
    now = datetime.now(UTC)
    # Port 1: over the 800 W default for two readings.
    pile.send("session", event="start", port=1, session="OP", card="C-1", meter_wh=0,
              ts=ts(now - timedelta(minutes=3)))
    pile.send("meter", port=1, session="OP", power_w=1200.0, energy_wh=20.0,
              ts=ts(now - timedelta(minutes=2)))
    pile.send("meter", port=1, session="OP", power_w=1250.0, energy_wh=40.0,
              ts=ts(now - timedelta(minutes=1)))
    # Port 2: started 8 h 5 min ago (the pile's clock), still charging.
    pile.send("session", event="start", port=2, session="TL", card="C-2", meter_wh=0,
              ts=ts(now - timedelta(hours=8, minutes=5)))
    pile.send("meter", port=2, session="TL", power_w=150.0, energy_wh=900.0, ts=ts(now))
    # Port 3: 20 min charging, then 16 min under 30 W.
    pile.send("session", event="start", port=3, session="FU", card="C-3", meter_wh=0,
              ts=ts(now - timedelta(minutes=40)))
    pile.send("meter", port=3, session="FU", power_w=250.0, energy_wh=80.0,
              ts=ts(now - timedelta(minutes=20)))
    for m in (16, 10, 5, 0):
        pile.send("meter", port=3, session="FU", power_w=12.0, energy_wh=85.0,
                  ts=ts(now - timedelta(minutes=m)))
    stops = poll(lambda: (lambda c: c if len(c) >= 3 else None)(
        [c for c in pile.commands() if c["action"] == "stop"]), timeout=15, what="three stops")
    assert sorted(c["port"] for c in stops) == [1, 2, 3]
    for c in stops:
        pile.send("ack", cmd=c["id"], result="accepted")
    assert configs(pile) == []
    assert session_of(app, "OP").guard_reason == "overload"
    assert session_of(app, "TL").guard_reason == "too_long"
    assert session_of(app, "FU").guard_reason == "full"
    # The acks are tracked on the commands.
    from chargers.models import Command
    with app.app_context():
        poll(lambda: {c.status for c in db.session.scalars(select(Command))} == {"accepted"},
             timeout=10, what="acks recorded")
