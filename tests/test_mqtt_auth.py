"""`flask mqtt-auth`: the Mosquitto password file, ACL and settings, checked with a
real, private Mosquitto running the generated settings (allow_anonymous false,
password_file, acl_file, use_username_as_clientid)."""

from __future__ import annotations

import json
import stat
import time

import pytest

from chargers.services.devices import mqtt_auth
from tests.brokers import MOSQUITTO, Mosquitto, skip_unless
from tests.conftest import bearer
from tests.device_clients import Peer

PREFIX = "chargers/v1"
BACKEND = ("backend", "backend-pass-123")


@pytest.fixture
def two_piles(app, client, admin, alley_with_pile):
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
            from chargers.services.devices import piles

            with app.app_context():
                piles.set_pile_enabled(None, pile_id, False)
    return secrets


@pytest.fixture
def auth_files(runner, two_piles, tmp_path):
    out = tmp_path / "auth"
    result = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", BACKEND[0],
                                 "--backend-password", BACKEND[1]])
    assert result.exit_code == 0, result.output
    return out


def start_secured(auth_dir, workdir) -> Mosquitto:
    """A private Mosquitto with the generated settings file of `auth_dir`."""
    skip_unless(MOSQUITTO, "mosquitto binary")
    workdir.mkdir()
    # tests/brokers.py keeps Mosquitto as root here, so it reads the 600 files; in
    # production chown them to the `mosquitto` user.
    broker = Mosquitto(workdir, extra_conf=(auth_dir / "mosquitto-auth.conf").read_text())
    broker.start()
    return broker


@pytest.fixture
def secured_mosquitto(auth_files, tmp_path):
    broker = start_secured(auth_files, tmp_path / "mosquitto")
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
    conf = (auth_files / "mosquitto-auth.conf").read_text().splitlines()
    assert {"allow_anonymous false", "use_username_as_clientid true",
            f"password_file {(auth_files / 'passwd').resolve()}",
            f"acl_file {(auth_files / 'acl').resolve()}"} <= set(conf)


def test_each_backend_process_has_a_login(runner, two_piles, tmp_path):
    """Client ids are bound to logins, so the worker (MQTT_CLIENT_ID), `jobs run`
    (`<id>-jobs`) and any further backend process log in under their own names."""
    out = tmp_path / "auth"
    result = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", "chargers-backend",
                                 "--backend-password", BACKEND[1],
                                 "--backend-client-id", "chargers-backend-2"])
    assert result.exit_code == 0, result.output
    users = [line.split(":", 1)[0] for line in (out / "passwd").read_text().splitlines()]
    assert users == ["chargers-backend", "chargers-backend-jobs", "chargers-backend-2",
                     "P-1", "P-2", "P-3"]
    acl = (out / "acl").read_text()
    for user in users[:3]:
        assert f"user {user}\ntopic read {PREFIX}/#\ntopic write {PREFIX}/+/cmd" in acl

    broker = start_secured(out, tmp_path / "mosquitto")
    try:
        from chargers.mqtt_settings import login_name

        made = []
        for client_id in users[:3]:  # all at once: none displaces another
            peer = Peer(broker.port, client_id, login_name("chargers-backend", client_id), BACKEND[1])
            made.append(peer)
            assert peer.connect(), client_id
        time.sleep(0.5)
        assert [p.disconnects for p in made] == [0, 0, 0]
    finally:
        for peer in made:
            peer.close()
        broker.stop()


def test_a_pile_cannot_take_over_the_backends_session(secured_mosquitto, two_piles, peers):
    """A pile's login with the backend's client id (clean session) neither displaces
    the backend nor wipes its persistent session: every message queued for it while
    it was away arrives."""
    port = secured_mosquitto.port
    backend = peers(port, "backend", *BACKEND, clean_session=False)
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/#") == 1
    pile = peers(port, "P-2", "P-2", two_piles["P-2"])
    assert pile.connect()

    # Online: the takeover attempt does not drop the backend's connection.
    for client_id in ("backend", "chargers-backend"):
        attacker = peers(port, client_id, "P-1", two_piles["P-1"], clean_session=True)
        attacker.connect()  # accepted as P-1 (its own id), or refused: never as the backend
        attacker.close()
    pile.publish(f"{PREFIX}/P-2/heartbeat", b'{"id":"live"}')
    backend.wait_for(f"{PREFIX}/P-2/heartbeat")
    assert backend.disconnects == 0

    # Offline: 40 heartbeats queued, then the takeover attempt, then the backend returns.
    backend.close()
    for n in range(20):
        pile.publish(f"{PREFIX}/P-2/heartbeat", json.dumps({"id": f"h{n}"}).encode())
    attacker = peers(port, "backend", "P-1", two_piles["P-1"], clean_session=True)
    attacker.connect()
    attacker.subscribe(f"{PREFIX}/#")
    for n in range(20, 40):
        pile.publish(f"{PREFIX}/P-2/heartbeat", json.dumps({"id": f"h{n}"}).encode())
    attacker.close()
    assert attacker.received() == []
    assert pile.disconnects == 0

    back = peers(port, "backend", *BACKEND, clean_session=False)
    assert back.connect()
    assert back.session_present
    got = back.wait_for(f"{PREFIX}/P-2/heartbeat", 40, timeout=20)
    assert [json.loads(m.payload)["id"] for m in got] == [f"h{n}" for n in range(40)]


def test_a_pile_cannot_take_over_another_piles_session(secured_mosquitto, two_piles, peers):
    port = secured_mosquitto.port
    backend = peers(port, "backend", *BACKEND)
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/+/online") == 1
    victim = peers(port, "P-2", "P-2", two_piles["P-2"])
    assert victim.connect()
    attacker = peers(port, "P-2", "P-1", two_piles["P-1"], clean_session=True)
    attacker.connect()
    # Whatever the attacker connected as, it speaks only as P-1 …
    attacker.publish(f"{PREFIX}/P-2/online", b"0")
    victim.publish(f"{PREFIX}/P-2/online", b"1")
    got = backend.wait_for(f"{PREFIX}/P-2/online")
    assert [m.payload for m in got] == [b"1"]
    # … and P-2 is still connected.
    assert victim.disconnects == 0


def test_backend_login_comes_from_mqtt_url(app, runner, alley_with_pile, tmp_path):
    app.config["MQTT_URL"] = "mqtt://svc:s3cr%40t@broker.example:1883"
    result = runner.invoke(args=["mqtt-auth", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    line = (tmp_path / "a" / "passwd").read_text().splitlines()[0]
    user, hashed = line.split(":", 1)
    from chargers.services.devices.secrets import verify_secret

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


def test_named_workers_each_have_a_login_and_share_the_device_topics(app, runner, two_piles,
                                                                    tmp_path):
    """WORKER_NAMES: each worker MQTT_CLIENT_ID-<name> logs in under its own name
    (neither takes the other's session) and may take the shared subscription."""
    app.config["WORKER_NAMES"] = "w1, w2"
    out = tmp_path / "auth"
    result = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", "chargers-backend",
                                 "--backend-password", BACKEND[1]])
    assert result.exit_code == 0, result.output
    users = [line.split(":", 1)[0] for line in (out / "passwd").read_text().splitlines()]
    assert users[:4] == ["chargers-backend", "chargers-backend-jobs", "chargers-backend-w1",
                         "chargers-backend-w2"]

    broker = start_secured(out, tmp_path / "mosquitto")
    made = []
    try:
        from chargers.mqtt_settings import login_name
        from chargers.worker import worker_identity

        for name in ("w1", "w2"):
            client_id, group = worker_identity(app.config, name)
            peer = Peer(broker.port, client_id, login_name("chargers-backend", client_id), BACKEND[1])
            made.append(peer)
            assert peer.connect(), client_id
            assert peer.subscribe(f"$share/{group}/{PREFIX}/#") == 1
        time.sleep(0.5)
        assert [p.disconnects for p in made] == [0, 0]
    finally:
        for peer in made:
            peer.close()
        broker.stop()


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
    ("backend-w1", "$share/chargers/chargers/v1/#", "subscribe", True),
    ("backend-w1", "$share/chargers/#", "subscribe", False),
    ("P-1", "$share/g/chargers/v1/#", "subscribe", False),
    ("P-1", "$share/g/chargers/v1/P-1/cmd", "subscribe", True),
    ("P+", "chargers/v1/P+/status", "publish", False),
    (None, "chargers/v1/P-1/status", "publish", False),
])
def test_access_rule(user, topic, action, ok):
    assert mqtt_auth.allowed(user, topic, action, prefix=PREFIX, backend_user="backend") is ok


def test_jobs_run_does_not_wipe_the_workers_session(app, app_config, runner, client, admin, two_piles,
                                                    tmp_path):
    """`flask jobs run` publishes under its own login (`<client id>-jobs`): with client
    ids bound to logins, sharing the worker's login would have made its clean session
    replace, and wipe, the worker's. Here the worker is away with 20 messages queued,
    `jobs run commands-dispatch` sends a command, and the worker finds all 20."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    password = "worker-pass-123"
    out = tmp_path / "auth"
    result = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", "chargers-backend",
                                 "--backend-password", password])
    assert result.exit_code == 0, result.output
    broker = start_secured(out, tmp_path / "mosquitto")
    made = []
    try:
        worker = Peer(broker.port, "chargers-backend", "chargers-backend", password, clean_session=False)
        made.append(worker)
        assert worker.connect() and worker.subscribe(f"{PREFIX}/#") == 1
        worker.close()
        pile = Peer(broker.port, "P-1", "P-1", two_piles["P-1"])
        made.append(pile)
        assert pile.connect() and pile.subscribe(f"{PREFIX}/P-1/cmd") == 1
        for n in range(20):
            pile.publish(f"{PREFIX}/P-1/heartbeat", json.dumps({"id": f"h{n}"}).encode())

        r = client.post("/api/v1/piles/P-1/commands", json={"action": "reset"}, headers=bearer(admin[1]))
        assert r.status_code in (200, 201, 202), r.json
        env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "CHARGERS_ENV": "testing",
               "MQTT_URL": f"mqtt://chargers-backend:{password}@127.0.0.1:{broker.port}",
               "MQTT_CLIENT_ID": "chargers-backend"}
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run",
                               "commands-dispatch"], cwd=Path(__file__).resolve().parent.parent, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(pile.wait_for(f"{PREFIX}/P-1/cmd")[0].payload)["action"] == "reset"

        back = Peer(broker.port, "chargers-backend", "chargers-backend", password, clean_session=False)
        made.append(back)
        assert back.connect() and back.session_present
        got = back.wait_for(f"{PREFIX}/P-1/heartbeat", 20, timeout=20)
        assert [json.loads(m.payload)["id"] for m in got] == [f"h{n}" for n in range(20)]
    finally:
        for peer in made:
            peer.close()
        broker.stop()
