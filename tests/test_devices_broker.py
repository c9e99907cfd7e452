"""The development broker (`flask --app wsgi broker`), run as a subprocess against a
temp database. The embedded one (`--kind embedded`, amqtt) authenticates piles and
the backend, binds client ids to logins, enforces the ACL, and keeps QoS 1 messages
for the backend's offline persistent session; the Mosquitto one (`--kind mosquitto`,
the default where installed) runs Mosquitto with the generated configuration."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.brokers import MOSQUITTO, free_port, skip_unless
from tests.conftest import bearer
from tests.device_clients import Peer, wait_until
from tests.embedded_broker import embedded_broker

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "chargers/v1"


@pytest.fixture
def embedded(app, app_config, alley_with_pile, tmp_path):
    """The broker subprocess over the test's database (pile P-1 registered):
    {"host", "port", "username", "password", "secret", "proc", "file"}."""
    with embedded_broker(app_config["SQLALCHEMY_DATABASE_URI"], Path(app_config["EMBEDDED_BROKER_FILE"]),
                         tmp_path / "broker.log") as info:
        yield {**info, "secret": alley_with_pile}


def test_broker_file_is_private_and_removed_on_stop(embedded):
    assert stat.S_IMODE(embedded["file"].stat().st_mode) == 0o600
    assert set(json.loads(embedded["file"].read_text())) == {"host", "port", "username", "password"}
    embedded["proc"].send_signal(signal.SIGTERM)
    assert embedded["proc"].wait(15) == 0
    assert not embedded["file"].exists()


def test_logins(embedded, peers):
    port = embedded["port"]
    assert not peers(port, "anon").connect()
    assert not peers(port, "P-1", "P-1", "wrong-secret").connect()
    assert not peers(port, "P-1", "P-1").connect()  # username, no password
    assert not peers(port, "P-9", "P-9", embedded["secret"]).connect()  # unknown pile
    assert not peers(port, "other-id", "P-1", embedded["secret"]).connect()  # client id != pile id
    assert not peers(port, "x", embedded["username"], "not-it").connect()
    assert peers(port, "P-1", "P-1", embedded["secret"]).connect()
    assert peers(port, "chargers-backend", embedded["username"], embedded["password"]).connect()


def test_acl(embedded, peers):
    port = embedded["port"]
    backend = peers(port, "chargers-backend", embedded["username"], embedded["password"])
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/#") == 1
    pile = peers(port, "P-1", "P-1", embedded["secret"])
    assert pile.connect()
    assert pile.subscribe(f"{PREFIX}/P-1/cmd") == 1
    for snoop in (f"{PREFIX}/#", "#", f"{PREFIX}/P-2/cmd", f"{PREFIX}/+/cmd"):
        assert pile.subscribe(snoop) == 0x80, snoop

    pile.publish(f"{PREFIX}/P-2/fault", b'{"id":"spoof"}')  # as another pile: dropped
    pile.publish(f"{PREFIX}/P-1/status", b'{"id":"own"}')
    backend.wait_for(f"{PREFIX}/P-1/status")
    assert backend.received(f"{PREFIX}/P-2/fault") == []

    backend.publish(f"{PREFIX}/P-2/cmd", b'{"id":"c-other"}')
    backend.publish(f"{PREFIX}/P-1/cmd", b'{"id":"c-own"}')
    pile.wait_for(f"{PREFIX}/P-1/cmd")
    assert [m.topic for m in pile.received()] == [f"{PREFIX}/P-1/cmd"]


def test_retained_online_reaches_backend_but_not_other_piles(embedded, peers, client, admin):
    from tests.conftest import bearer

    r = client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": 2},
                    headers=bearer(admin[1]))
    assert r.status_code == 201, r.json
    port = embedded["port"]
    p1 = peers(port, "P-1", "P-1", embedded["secret"])
    assert p1.connect()
    p1.publish(f"{PREFIX}/P-1/online", b"1", retain=True)
    p2 = peers(port, "P-2", "P-2", r.json["secret"])
    assert p2.connect()
    assert p2.subscribe(f"{PREFIX}/P-2/cmd") == 1
    backend = peers(port, "chargers-backend", embedded["username"], embedded["password"])
    assert backend.connect()
    backend.subscribe(f"{PREFIX}/#")
    got = backend.wait_for(f"{PREFIX}/P-1/online")
    assert got[0].payload == b"1" and got[0].retain
    backend.publish(f"{PREFIX}/P-2/cmd", b'{"id":"marker"}')
    p2.wait_for(f"{PREFIX}/P-2/cmd")
    assert [m.topic for m in p2.received()] == [f"{PREFIX}/P-2/cmd"]


def _heartbeats_while_the_backend_is_away(embedded, peers, n: int):
    """The backend subscribes with a persistent session and leaves; pile P-1 then
    publishes heartbeats h0..h<n-1> (QoS 1). Returns the pile's connected peer."""
    backend = peers(embedded["port"], "chargers-backend", embedded["username"],
                    embedded["password"], clean_session=False)
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/#") == 1
    backend.close()
    pile = peers(embedded["port"], "P-1", "P-1", embedded["secret"])
    assert pile.connect()
    for i in range(n):
        pile.publish(f"{PREFIX}/P-1/heartbeat", json.dumps({"id": f"h{i}"}).encode())
    return pile


def test_offline_persistent_backend_session_gets_every_message(embedded, peers):
    """The check the STYLE note asks for: authenticated, clean_session=False, 50 QoS 1
    messages while the backend is away; all arrive once it is back, none retained."""
    port = embedded["port"]
    login = (embedded["username"], embedded["password"])
    _heartbeats_while_the_backend_is_away(embedded, peers, 50)

    # A wrong password with the backend's client id must not wipe the queue.
    assert not peers(port, "chargers-backend", login[0], "wrong", clean_session=True).connect()

    back = peers(port, "chargers-backend", *login, clean_session=False)
    assert back.connect()
    assert back.session_present
    got = back.wait_for(f"{PREFIX}/P-1/heartbeat", 50, timeout=20)
    assert [json.loads(m.payload)["id"] for m in got] == [f"h{n}" for n in range(50)]
    assert not any(m.retain for m in got)  # queued messages are not retained ones


def test_messages_before_the_backends_first_connect_are_kept(embedded, peers):
    """The broker creates the backend's session at start, so the first boot of a pile
    that beats the worker to the broker is not lost."""
    port = embedded["port"]
    pile = peers(port, "P-1", "P-1", embedded["secret"])
    assert pile.connect()
    pile.publish(f"{PREFIX}/P-1/boot", b'{"id":"b0"}')
    backend = peers(port, "chargers-backend", embedded["username"], embedded["password"],
                    clean_session=False)
    assert backend.connect()
    backend.subscribe(f"{PREFIX}/#")
    backend.wait_for(f"{PREFIX}/P-1/boot")
    pile.publish(f"{PREFIX}/P-1/boot", b'{"id":"b1"}')
    wait_until(lambda: len(backend.received(f"{PREFIX}/P-1/boot")) >= 2, 10, "second boot")
    # One subscription only: the placeholder retired, so no doubles.
    pile.publish(f"{PREFIX}/P-1/boot", b'{"id":"b2"}')
    wait_until(lambda: any(m.payload == b'{"id":"b2"}' for m in backend.received()), 10, "b2")
    assert [m.payload for m in backend.received(f"{PREFIX}/P-1/boot")] == [
        b'{"id":"b0"}', b'{"id":"b1"}', b'{"id":"b2"}']


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
def test_takes_a_free_port_when_the_preferred_one_is_taken(app, app_config, tmp_path, kind):
    import socket

    if kind == "mosquitto":
        skip_unless(MOSQUITTO, "mosquitto binary")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
               "EMBEDDED_BROKER_FILE": str(tmp_path / "b.json"), "MQTT_URL": "",
               "BROKER_DIR": str(tmp_path / "mosquitto")}
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "broker", "--kind", kind,
                                 "--port", str(busy)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: (tmp_path / "b.json").exists() or proc.poll() is not None, 30, "b.json")
            info = json.loads((tmp_path / "b.json").read_text())
            assert info["port"] != busy
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=15)
        assert f"listening on 127.0.0.1:{info['port']} (127.0.0.1:{busy} is taken)" in out


def test_create_app_starts_no_broker(app, app_config):
    assert not Path(app_config["EMBEDDED_BROKER_FILE"]).exists()


def test_last_will_when_a_pile_dies(embedded, peers, tmp_path):
    """A pile process killed outright (no DISCONNECT): the broker publishes its
    retained last will `online 0`."""
    backend = peers(embedded["port"], "chargers-backend", embedded["username"], embedded["password"])
    assert backend.connect()
    backend.subscribe(f"{PREFIX}/+/online")
    script = tmp_path / "pile.py"
    script.write_text(
        "import sys, time\n"
        "import paho.mqtt.client as mqtt\n"
        "from paho.mqtt.enums import CallbackAPIVersion\n"
        "c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id='P-1', protocol=mqtt.MQTTv311)\n"
        "c.username_pw_set('P-1', sys.argv[2])\n"
        f"c.will_set('{PREFIX}/P-1/online', '0', qos=1, retain=True)\n"
        "c.connect('127.0.0.1', int(sys.argv[1]), keepalive=60)\n"
        "c.loop_start()\n"
        f"c.publish('{PREFIX}/P-1/online', '1', qos=1, retain=True).wait_for_publish(10)\n"
        "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script), str(embedded["port"]), embedded["secret"]])
    try:
        backend.wait_for(f"{PREFIX}/P-1/online", 1, timeout=20)
        proc.kill()
        got = backend.wait_for(f"{PREFIX}/P-1/online", 2, timeout=20)
        assert [m.payload for m in got] == [b"1", b"0"]
    finally:
        proc.kill()
        proc.wait(10)
    late = peers(embedded["port"], "late-reader", embedded["username"], embedded["password"])
    assert late.connect()
    late.subscribe(f"{PREFIX}/P-1/online")
    assert late.wait_for(f"{PREFIX}/P-1/online")[0].payload == b"0"  # retained


def test_simulator_finds_the_embedded_broker_by_its_file(embedded, app_config, peers, tmp_path):
    """The `make run` path: MQTT_URL empty, the simulator reads the broker file."""
    backend = peers(embedded["port"], "chargers-backend", embedded["username"], embedded["password"])
    assert backend.connect()
    backend.subscribe(f"{PREFIX}/#")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"P-1": embedded["secret"]}))
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "MQTT_URL": "",
           "EMBEDDED_BROKER_FILE": str(embedded["file"])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "--alley", "lane", "--speed", "30",
         "--secrets", str(secrets), "--duration", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        backend.wait_for(f"{PREFIX}/P-1/boot", timeout=30)
        wait_until(lambda: len(backend.received(f"{PREFIX}/P-1/status")) >= 4, 10, "port statuses")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out


def test_with_mqtt_url_the_procfile_broker_only_idles(app_config, tmp_path):
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
           "MQTT_URL": "mqtt://u:p@127.0.0.1:1", "EMBEDDED_BROKER_FILE": str(tmp_path / "b.json")}
    refused = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "broker"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "MQTT_URL is set" in refused.stderr
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "broker", "--unless-mqtt-url"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "no embedded broker" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0
    assert not (tmp_path / "b.json").exists()


def test_unacked_messages_come_again_after_the_backend_dies(embedded, peers):
    """At-least-once with the worker's ack-after-commit: what the backend received but
    never acknowledged (killed before its commit) is delivered again on reconnect.
    amqtt 0.12.1 dropped such messages from the session."""
    port = embedded["port"]
    login = (embedded["username"], embedded["password"])
    backend = peers(port, "chargers-backend", *login, clean_session=False, manual_ack=True)
    assert backend.connect()
    assert backend.subscribe(f"{PREFIX}/#") == 1
    pile = peers(port, "P-1", "P-1", embedded["secret"])
    assert pile.connect()
    for n in range(20):
        pile.publish(f"{PREFIX}/P-1/heartbeat", json.dumps({"id": f"h{n}"}).encode())
    got = backend.wait_for(f"{PREFIX}/P-1/heartbeat", 20)
    for m in got[:5]:  # the first five were committed and acknowledged …
        backend.client.ack(m.mid, m.qos)
    # (a QoS 1 publish behind the PUBACKs: once the broker answers it, it has read them)
    backend.publish(f"{PREFIX}/P-1/cmd", b'{"id":"sync"}')
    backend.die()  # … then the worker was killed

    again = peers(port, "chargers-backend", *login, clean_session=False, manual_ack=True)
    assert again.connect()
    assert again.session_present
    redelivered = again.wait_for(f"{PREFIX}/P-1/heartbeat", 15, timeout=20)
    assert sorted(json.loads(m.payload)["id"] for m in redelivered) == sorted(f"h{n}" for n in range(5, 20))
    assert all(m.dup for m in redelivered)


def test_simulator_follows_a_restarted_embedded_broker(app, app_config, alley_with_pile, tmp_path):
    """`make run` survives a broker restart: the new broker (another port, new
    backend login) writes its file, and the simulated piles move there and boot."""
    info_file = Path(app_config["EMBEDDED_BROKER_FILE"])
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"P-1": alley_with_pile}))
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "MQTT_URL": "",
           "EMBEDDED_BROKER_FILE": str(info_file)}
    sim = None
    try:
        for n in (1, 2):
            with embedded_broker(env["DATABASE_URL"], info_file, tmp_path / f"broker{n}.log") as info:
                backend = Peer(info["port"], "chargers-backend", info["username"], info["password"])
                try:
                    assert backend.connect()
                    backend.subscribe(f"{PREFIX}/#")
                    if sim is None:
                        sim = subprocess.Popen(
                            [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "--alley", "lane",
                             "--speed", "30", "--secrets", str(secrets), "--duration", "120"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                    backend.wait_for(f"{PREFIX}/P-1/boot", timeout=30)
                finally:
                    backend.close()
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            sim.wait(20)


def test_subscription_table_can_change_while_iterated():
    """amqtt walks its subscription table across awaits while other connections
    subscribe; the broker's table iterates over a snapshot of its keys."""
    from chargers.broker.amqtt_broker import _SnapshotDict

    table = _SnapshotDict({"a/#": [], "b/#": []})
    seen = []
    for topic in table:
        seen.append(topic)
        table[f"new/{topic}"] = []  # a plain dict raises RuntimeError here
    assert seen == ["a/#", "b/#"] and len(table) == 4


def test_a_pile_cannot_take_the_backends_client_id(embedded, peers, client, admin):
    """Client ids are bound to logins: a pile's login with the backend's client id
    (or a pile registered under one of the backend's names) is refused, and the
    backend's queue survives the attempt."""
    port = embedded["port"]
    login = (embedded["username"], embedded["password"])
    pile = _heartbeats_while_the_backend_is_away(embedded, peers, 10)

    for client_id in ("chargers-backend", "chargers-backend-jobs"):
        assert not peers(port, client_id, "P-1", embedded["secret"], clean_session=True).connect()
    r = client.post("/api/v1/piles", json={"id": "chargers-backend-jobs", "alley": "lane", "ports": 1},
                    headers=bearer(admin[1]))
    assert r.status_code == 201, r.json  # the registry allows the name; the broker does not
    assert not peers(port, "chargers-backend-jobs", "chargers-backend-jobs", r.json["secret"],
                     clean_session=True).connect()
    assert pile.disconnects == 0

    back = peers(port, "chargers-backend", *login, clean_session=False)
    assert back.connect() and back.session_present
    got = back.wait_for(f"{PREFIX}/P-1/heartbeat", 10, timeout=20)
    assert [json.loads(m.payload)["id"] for m in got] == [f"h{n}" for n in range(10)]


def test_a_health_probe_leaves_no_warning(embedded, app, client, tmp_path):
    """/healthz connects to the broker and hangs up before any CONNECT; amqtt logged
    a warning for each one."""
    import socket

    app.config["EMBEDDED_BROKER_FILE"] = str(embedded["file"])
    for _ in range(3):
        assert client.get("/healthz").json["checks"]["mqtt"] == "ok"
    with socket.create_connection(("127.0.0.1", embedded["port"])):
        pass
    # A refused login after the probes: once it is in the log, so would they be.
    backend = Peer(embedded["port"], "x", embedded["username"], "wrong")
    assert not backend.connect()
    log = tmp_path / "broker.log"  # the `embedded` fixture's
    wait_until(lambda: "refused login" in log.read_text(), 10, "the refused login in the log")
    assert "WARNING" not in log.read_text().split("refused login")[0]


def test_refuses_an_amqtt_it_was_not_written_for(monkeypatch):
    from chargers.broker import amqtt_broker

    amqtt_broker.check_amqtt_version()  # the pinned one
    monkeypatch.setattr(amqtt_broker, "version", lambda name: "0.13.0")
    with pytest.raises(RuntimeError, match="written for amqtt 0.12.1, not 0.13.0"):
        amqtt_broker.check_amqtt_version()


def test_mosquitto_with_the_generated_configuration(app, app_config, alley_with_pile, client, admin,
                                                    peers, tmp_path):
    """`flask broker` where Mosquitto is installed: the generated password file, ACL
    and client-id binding, persistence in BROKER_DIR, the address file, the worker's
    session ready before the first pile; a pile registered while it runs can
    connect; SIGTERM stops Mosquitto."""
    skip_unless(MOSQUITTO, "mosquitto binary")
    info_file = tmp_path / "b.json"
    workdir = tmp_path / "mosquitto"
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "MQTT_URL": "",
           "EMBEDDED_BROKER_FILE": str(info_file), "BROKER_DIR": str(workdir)}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "broker", "--port",
                             str(free_port())], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: info_file.exists() or proc.poll() is not None, 30, "the broker file")
        info = json.loads(info_file.read_text())
        assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
        conf = (workdir / "mosquitto.conf").read_text()
        assert f"listener {info['port']} 127.0.0.1" in conf and "use_username_as_clientid true" in conf
        assert f"persistence_location {workdir}/" in conf

        port = info["port"]
        assert not peers(port, "anon").connect()
        assert not peers(port, "P-1", "P-1", "wrong").connect()
        pile = peers(port, "P-1", "P-1", alley_with_pile)
        assert pile.connect()
        pile.publish(f"{PREFIX}/P-1/boot", b'{"id":"early"}')  # before the worker's first connect
        backend = peers(port, "chargers-backend", info["username"], info["password"], clean_session=False)
        assert backend.connect()
        assert backend.session_present  # made by `flask broker` before it wrote the file
        assert backend.wait_for(f"{PREFIX}/P-1/boot")[0].payload == b'{"id":"early"}'
        assert backend.subscribe(f"{PREFIX}/#") == 1
        jobs = peers(port, "chargers-backend-jobs", "chargers-backend-jobs", info["password"])
        assert jobs.connect()
        pile.publish(f"{PREFIX}/P-2/status", b'{"id":"spoof"}')  # the ACL drops it
        pile.publish(f"{PREFIX}/P-1/status", b'{"id":"own"}')
        backend.wait_for(f"{PREFIX}/P-1/status")
        assert backend.received(f"{PREFIX}/P-2/status") == []

        r = client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": 2},
                        headers=bearer(admin[1]))
        assert r.status_code == 201, r.json
        late = Peer(port, "P-2", "P-2", r.json["secret"])
        try:
            wait_until(lambda: late.connect(timeout=2), 30, "the new pile's login")
        finally:
            late.close()
        assert backend.disconnects == 0 and jobs.disconnects == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "MQTT broker (Mosquitto) listening on 127.0.0.1:" in out
    assert not info_file.exists()
    assert (workdir / "mosquitto.db").exists()  # saved at shutdown
