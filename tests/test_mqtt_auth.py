"""`flask mqtt-auth`: the Mosquitto password file and ACL, checked with a real,
private Mosquitto (allow_anonymous false, password_file, acl_file)."""

from __future__ import annotations

import json
import stat

import pytest

from chargers.services import mqtt_auth
from tests.brokers import MOSQUITTO, Mosquitto, skip_unless
from tests.conftest import bearer

PREFIX = "chargers/v1"
BACKEND = ("backend", "backend-pass-123")


@pytest.fixture
def two_piles(client, admin, alley_with_pile):
    """P-1 (from alley_with_pile) and P-2 in alley `lane`, plus a disabled P-3:
    {pile_id: secret}."""
    _, token = admin
    secrets = {"P-1": alley_with_pile}
    for pile_id, enabled in (("P-2", True), ("P-3", False)):
        r = client.post("/api/v1/piles", json={"id": pile_id, "alley": "lane", "ports": 2},
                        headers=bearer(token))
        assert r.status_code == 201, r.json
        secrets[pile_id] = r.json["secret"]
        if not enabled:
            from chargers.services import piles

            piles.set_pile_enabled(None, pile_id, False)
    return secrets


@pytest.fixture
def auth_files(runner, two_piles, tmp_path):
    out = tmp_path / "auth"
    result = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", BACKEND[0],
                                 "--backend-password", BACKEND[1]])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def secured_mosquitto(auth_files, tmp_path):
    skip_unless(MOSQUITTO, "mosquitto binary")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    # tests/brokers.py keeps Mosquitto as root here, so it reads the 600 files; in
    # production chown them to the `mosquitto` user.
    broker = Mosquitto(workdir, extra_conf=(
        "allow_anonymous false\n"
        f"password_file {auth_files / 'passwd'}\n"
        f"acl_file {auth_files / 'acl'}\n"))
    broker.start()
    yield broker
    broker.stop()


def test_files_list_every_pile_and_backend_privately(auth_files, two_piles):
    passwd = (auth_files / "passwd").read_text().splitlines()
    users = [line.split(":", 1)[0] for line in passwd]
    assert users == ["backend", "P-1", "P-2", "P-3"]  # disabled P-3 too: it must report faults
    assert all(line.split(":", 1)[1].startswith("$7$") for line in passwd)
    assert stat.S_IMODE((auth_files / "passwd").stat().st_mode) == 0o600
    acl = (auth_files / "acl").read_text()
    assert f"pattern write {PREFIX}/%u/#" in acl
    assert f"pattern read {PREFIX}/%u/cmd" in acl
    assert f"user backend\ntopic read {PREFIX}/#\ntopic write {PREFIX}/+/cmd" in acl


def test_backend_login_comes_from_mqtt_url(app, runner, alley_with_pile, tmp_path):
    app.config["MQTT_URL"] = "mqtt://svc:s3cr%40t@broker.example:1883"
    result = runner.invoke(args=["mqtt-auth", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    line = (tmp_path / "a" / "passwd").read_text().splitlines()[0]
    user, hashed = line.split(":", 1)
    from chargers.services.secrets import verify_secret

    assert user == "svc" and verify_secret("s3cr@t", hashed)


def test_without_backend_login_it_refuses(runner, alley_with_pile, tmp_path):
    result = runner.invoke(args=["mqtt-auth", "--out", str(tmp_path / "a")])
    assert result.exit_code != 0
    assert "MQTT_URL" in result.output


def test_right_and_wrong_secrets(secured_mosquitto, two_piles, peers):
    port = secured_mosquitto.port
    assert peers(port, "P-1", "P-1", two_piles["P-1"]).connect()
    assert not peers(port, "P-2", "P-2", two_piles["P-1"]).connect()  # P-1's secret for P-2
    assert not peers(port, "P-2", "P-2", "guess").connect()
    assert not peers(port, "anon").connect()
    assert peers(port, "P-3", "P-3", two_piles["P-3"]).connect()  # disabled, still reports
    assert peers(port, "svc", *BACKEND).connect()


def test_acl_stops_spoofing_and_snooping(secured_mosquitto, two_piles, peers):
    port = secured_mosquitto.port
    backend = peers(port, "chargers-backend", *BACKEND)
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/#") == 1

    a = peers(port, "P-1", "P-1", two_piles["P-1"])
    b = peers(port, "P-2", "P-2", two_piles["P-2"])
    assert a.connect() and b.connect()
    assert a.subscribe(f"{PREFIX}/P-1/cmd") == 1
    # Snooping: Mosquitto 2.0 grants these SUBACKs but checks the read ACL on each
    # delivery (retained $SYS ones included), so nothing beyond P-1/cmd may arrive.
    for snoop in (f"{PREFIX}/#", "$SYS/#", f"{PREFIX}/P-2/cmd", f"{PREFIX}/+/status"):
        a.subscribe(snoop)

    # Spoofing: A publishes as B (Mosquitto still PUBACKs in 3.1.1, but drops it) …
    a.publish(f"{PREFIX}/P-2/fault", json.dumps({"id": "spoof", "ts": "2026-11-27T08:00:00+08:00",
                                                 "code": "smoke", "active": True}))
    # … then as itself: the backend gets this one, so the spoof would have come first.
    a.publish(f"{PREFIX}/P-1/status", b'{"id":"own"}')
    own = backend.wait_for(f"{PREFIX}/P-1/status")
    assert own[0].payload == b'{"id":"own"}'
    assert backend.received(f"{PREFIX}/P-2/fault") == []

    # B's messages and B's commands never reach A; A's own command does.
    b.publish(f"{PREFIX}/P-2/status", b'{"id":"b"}')
    backend.wait_for(f"{PREFIX}/P-2/status")
    backend.publish(f"{PREFIX}/P-2/cmd", b'{"id":"c-b"}')
    backend.publish(f"{PREFIX}/P-1/cmd", b'{"id":"c-a"}')
    a.wait_for(f"{PREFIX}/P-1/cmd")
    assert [m.topic for m in a.received()] == [f"{PREFIX}/P-1/cmd"]

    # A pile cannot send commands to another pile either.
    a.publish(f"{PREFIX}/P-2/cmd", b'{"id":"c-evil"}')
    backend.publish(f"{PREFIX}/P-2/cmd", b'{"id":"c-marker"}')
    b.subscribe(f"{PREFIX}/P-2/cmd")
    backend.publish(f"{PREFIX}/P-2/cmd", b'{"id":"c-after"}')
    got = b.wait_for(f"{PREFIX}/P-2/cmd")
    assert all(m.payload != b'{"id":"c-evil"}' for m in got)


@pytest.mark.parametrize(("user", "topic", "action", "ok"), [
    ("P-1", "chargers/v1/P-1/status", "publish", True),
    ("P-1", "chargers/v1/P-2/status", "publish", False),
    ("P-1", "chargers/v1/P-1/cmd", "subscribe", True),
    ("P-1", "chargers/v1/P-1/#", "subscribe", False),
    ("P-1", "chargers/v1/+/cmd", "subscribe", False),
    ("P-1", "chargers/v1/#", "subscribe", False),
    ("P-1", "#", "subscribe", False),
    ("P-1", "$SYS/#", "subscribe", False),
    ("P-1", "chargers/v1/P-2/cmd", "receive", False),
    ("P-1", "chargers/v1/P-1/cmd", "receive", True),
    ("backend", "chargers/v1/#", "subscribe", True),
    ("backend", "chargers/v1/P-1/status", "receive", True),
    ("backend", "chargers/v1/P-1/cmd", "publish", True),
    ("backend", "chargers/v1/P-1/status", "publish", False),
    ("backend", "#", "subscribe", False),
    ("P+", "chargers/v1/P+/status", "publish", False),
    (None, "chargers/v1/P-1/status", "publish", False),
])
def test_access_rule(user, topic, action, ok):
    assert mqtt_auth.allowed(user, topic, action, prefix=PREFIX, backend_user="backend") is ok
