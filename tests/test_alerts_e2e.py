"""Alerts end to end: a real broker (a private Mosquitto, or the embedded broker:
tests/brokers.py), the real worker subprocess (`flask --app wsgi worker`), a pile
as a paho client logged in with its secret and listening on its own cmd topic. A
smoke fault gives one critical alert and `stop` for every port + `disable` of the pile
on the pile's cmd topic (fire first: the whole pile is cut off); the pile's ack marks
them accepted and the pile disabled; the pile's clear
closes the alert."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alert, Command
from chargers.models import Pile as PileRow
from tests.ingest_support import ROOT, poll
from tests.ingest_support import Pile as PileClient


@pytest.fixture
def pile(broker, alley_with_pile):
    """P-1, hearing its own cmd topic (what a real pile subscribes to)."""
    p = PileClient(broker, "P-1", alley_with_pile, hear_cmd=True)
    yield p
    p.close()


def test_smoke_cuts_the_port_off_over_the_broker(worker, pile, app_ctx):
    pile.online()
    pile.send("boot", seq=0, ports=4)
    pile.send("fault", seq=1, port=3, code="smoke", active=True, value=0.9)

    def alert_and_commands():
        alerts = db.session.scalars(select(Alert)).all()
        heard = pile.commands()
        if len(alerts) == 1 and len(heard) >= 5:
            return alerts[0], heard
        return None

    alert, heard = poll(alert_and_commands, timeout=10, what="a smoke alert and five commands")
    assert (alert.code, alert.port, alert.severity, alert.status) == ("smoke", 3, "critical", "active")
    assert alert.cutoff == "pending"  # asked; confirmed only by the pile (test_cutoff.py)
    assert sorted((c["action"], c.get("port") or 0) for c in heard) == [
        ("disable", 0), ("stop", 1), ("stop", 2), ("stop", 3), ("stop", 4)]
    assert {c.id for c in db.session.scalars(select(Command))} == {c["id"] for c in heard}

    # the pile does as told and says so
    for i, c in enumerate(heard):
        pile.send("ack", seq=2 + i, cmd=c["id"], result="accepted")
    poll(lambda: {c.status for c in db.session.scalars(select(Command))} == {"accepted"},
         timeout=10, what="every command accepted")
    db.session.expire_all()
    assert db.session.get(PileRow, "P-1").enabled is False

    # a repeat bumps the count; the pile's clear closes the alert
    pile.send("fault", seq=7, port=3, code="smoke", active=True)
    poll(lambda: db.session.get(Alert, alert.id).count == 2, timeout=10, what="repeat counted")
    pile.send("fault", seq=8, port=3, code="smoke", active=False)
    poll(lambda: db.session.get(Alert, alert.id).status == "cleared", timeout=10,
         what="alert cleared by the pile")
    assert len(db.session.scalars(select(Alert)).all()) == 1
    assert len(pile.commands()) == 5  # no second cut-off
    events = [e.action for e in db.session.get(Alert, alert.id).events]
    assert events[:2] == ["raised", "cutoff_sent"] and "cleared_by_device" in events
    assert events.count("command_accepted") == 5


def test_offline_alert_raised_by_the_job_and_cleared_when_the_pile_returns(
        worker, pile, broker, alley_with_pile, app_ctx):
    pile.online()
    pile.send("boot", seq=0, ports=4)
    poll(lambda: db.session.get(PileRow, "P-1").online, timeout=10, what="pile online")
    pile.vanish()  # no DISCONNECT: the broker publishes the last will
    poll(lambda: not db.session.get(PileRow, "P-1").online, timeout=10, what="pile offline")

    # `flask jobs run` in the foreground, as an operator would (grace 0: no waiting)
    env = {**worker.env, "OFFLINE_GRACE_S": "0"}
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run",
                          "alerts-offline"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 offline alert(s) raised" in out.stdout
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.code, alert.port, alert.severity, alert.status) == ("offline", None, "major", "active")

    back = PileClient(broker, "P-1", alley_with_pile)
    try:
        back.online()
        poll(lambda: db.session.get(Alert, alert.id).status == "cleared", timeout=10,
             what="offline alert cleared")
    finally:
        back.close()
    # back within the 60 s debounce: kept in the history, but it paged nobody
    assert [e.action for e in db.session.get(Alert, alert.id).events] == [
        "raised", "cleared_online", "flap"]
