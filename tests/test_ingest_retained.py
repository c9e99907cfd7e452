"""Retained messages are old news (issue 13, item 2), against a real private Mosquitto:
a pile's retained `fault` (smoke, active) replayed by the broker when the worker
(re)subscribes changes nothing and is counted as `retained`; a live message is applied.
`online` is the one topic whose retained payload still counts (presence)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.ingest import client as client_mod
from chargers.models import Alert, Command, FaultEvent, IngestCounter, Port, Rejection
from tests.ingest_support import Pile as DevicePile
from tests.ingest_support import body, poll


@pytest.fixture
def app_config(app_config, mosquitto, tmp_path):
    app_config.update(MQTT_URL=mosquitto.url, MQTT_CLIENT_ID=f"backend-{tmp_path.name}")
    return app_config


def counter(app, key: str) -> int:
    with app.app_context():
        row = db.session.get(IngestCounter, key)
        return row.count if row else 0


def effects(app) -> tuple:
    """What a stale fault would change: fault events, alerts, commands, port states."""
    with app.app_context():
        n = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
        ports = db.session.execute(select(Port.number, Port.status, Port.enabled)
                                   .order_by(Port.number)).all()
        return n(FaultEvent), n(Alert), n(Command), [tuple(p) for p in ports]


def run_worker_until(app, key: str, count: int) -> None:
    """Start the real ingest client (subscribe), wait for `key` to reach `count`, stop."""
    ic = client_mod.IngestClient(app)
    assert ic.start()
    try:
        poll(lambda: counter(app, key) >= count, timeout=20, what=f"{key} >= {count}")
    finally:
        ic.stop()


def test_retained_fault_after_resubscribe_changes_nothing_and_live_one_is_applied(
        app, alley_with_pile, mosquitto):
    import json

    secret = alley_with_pile
    device = DevicePile(mosquitto, "P-1", secret)
    try:
        # The pile left a retained smoke fault (and a retained status) on the broker.
        device.publish_raw(device.topic("fault"),
                           json.dumps(body("fault", code="smoke", active=True, port=1)).encode(),
                           retain=True)
        device.publish_raw(device.topic("status"),
                           json.dumps(body("status", port=2, status="faulted")).encode(),
                           retain=True)
        before = effects(app)

        # First subscription: both replayed with the retain flag, both rejected.
        run_worker_until(app, "rejected:retained", 2)
        assert effects(app) == before
        # Resubscribe (a new connection of the worker): replayed again, still nothing.
        run_worker_until(app, "rejected:retained", 4)
        assert effects(app) == before
        with app.app_context():
            reasons = db.session.scalars(select(Rejection.reason)).all()
            assert reasons and set(reasons) == {"retained"}

        # A live message on the same topic is applied.
        ic = client_mod.IngestClient(app)
        assert ic.start()
        try:
            assert ic.connected.wait(10)
            poll(lambda: counter(app, "rejected:retained") >= 6, timeout=20,
                 what="the replay on this connection too")
            device.send("status", port=2, status="charging")
            poll(lambda: counter(app, "accepted:status") >= 1, timeout=20, what="live status")
            device.send("fault", code="over_current", active=True, port=3)
            poll(lambda: counter(app, "accepted:fault") >= 1, timeout=20, what="live fault")
        finally:
            ic.stop()
        faults, alerts, _, ports = effects(app)
        assert faults == 1 and alerts == 1
        assert dict((n, s) for n, s, _ in ports)[2] == "charging"
    finally:
        device.close()


def test_retained_online_still_counts(app, alley_with_pile, mosquitto):
    device = DevicePile(mosquitto, "P-1", alley_with_pile)
    try:
        device.online()
        run_worker_until(app, "accepted:online", 1)
        assert counter(app, "rejected:retained") == 0
    finally:
        device.close()
