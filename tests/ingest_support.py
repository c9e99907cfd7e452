"""Helpers for the ingest tests: protocol messages, piles as real paho clients,
the worker as a real subprocess, and polling with a deadline."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from flask import has_app_context

from chargers.extensions import db
from chargers.ingest.handlers import Incoming

PREFIX = "chargers/v1"
ROOT = Path(__file__).resolve().parent.parent
_ids = itertools.count(1)


def ts(at: datetime | None = None) -> str:
    """RFC 3339 in the piles' zone (+08:00)."""
    at = at or datetime.now(UTC)
    return at.astimezone(timezone_cn()).isoformat()


def timezone_cn():
    from datetime import timezone

    return timezone(timedelta(hours=8))


def body(kind: str, **fields) -> dict:
    """A protocol payload of `kind` with a fresh id and ts (overridable)."""
    data = {"id": f"{kind[:2]}-{next(_ids)}", "ts": ts()}
    defaults = {
        "boot": {"model": "EB-10", "firmware": "2.4.1", "ports": 4, "max_power_w": 1000},
        "heartbeat": {"rssi": -60},
        "status": {"port": 1, "status": "available"},
        "meter": {"port": 1, "session": "T1", "power_w": 320.0, "energy_wh": 5.0},
        "fault": {"code": "smoke", "active": True},
        "ack": {"cmd": "c-1", "result": "accepted"},
    }.get(kind, {})
    data.update(defaults)
    data.update(fields)
    return data


def raw(kind: str, **fields) -> bytes:
    return json.dumps(body(kind, **fields)).encode()


def incoming(kind: str, payload: bytes | dict | None = None, pile: str = "P-1",
             arrived_at: datetime | None = None, topic: str | None = None,
             sender: str | None = None, retained: bool = False, **fields) -> Incoming:
    """A message as the client would hand it to the handlers."""
    if payload is None:
        payload = body(kind, **fields)
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    return Incoming(topic or f"{PREFIX}/{pile}/{kind}", payload,
                    arrived_at or datetime.now(UTC), sender, retained)


def poll(fn, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Call fn until it returns a truthy value (returned) or the deadline passes.
    Inside an app context, rolls the test's DB session back each time so that it sees
    other processes' commits (outside one, fn makes requests or reads no database)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if has_app_context():
            db.session.rollback()
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


class Pile:
    """A pile: a real MQTT 3.1.1 paho client with the protocol's last will, logged
    in with its id and secret. `broker` is a tests.brokers.Broker (or a bare port
    of an anonymous broker). With `hear_cmd`, it subscribes to its own `cmd` topic
    and keeps what arrives in `commands()`."""

    def __init__(self, broker, pile_id: str = "P-1", password: str | None = None,
                 hear_cmd: bool = False, timeout: float = 10.0):
        self.pile_id = pile_id
        if isinstance(broker, int):
            port, client_id, username = broker, pile_id, pile_id if password else None
        else:
            port = broker.port
            client_id, username, password = broker.pile_login(pile_id, password)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(self.topic("online"), b"0", qos=1, retain=True)
        self.client.reconnect_delay_set(0.1, 1)
        self.hear_cmd = hear_cmd
        self.connected = threading.Event()
        self.refused: mqtt.ReasonCode | None = None
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._commands: list[dict] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a, **k: self.connected.clear()
        self.client.on_subscribe = lambda *a, **k: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.client.loop_stop()
            raise AssertionError(f"{pile_id} could not log in: {self.refused or 'no CONNACK'}")
        if hear_cmd:
            assert self._subscribed.wait(timeout), "cmd subscription not confirmed"

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            self.refused = reason_code
            return
        if self.hear_cmd:  # again on every reconnect: the session is clean
            client.subscribe(self.topic("cmd"), qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, message):
        if message.topic == self.topic("cmd"):
            with self._lock:
                self._commands.append(json.loads(message.payload))

    def commands(self) -> list[dict]:
        """The commands heard on the pile's cmd topic so far."""
        with self._lock:
            return list(self._commands)

    def topic(self, kind: str) -> str:
        return f"{PREFIX}/{self.pile_id}/{kind}"

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False, wait: bool = True):
        """Publish QoS 1; with `wait`, first wait for a connection (the broker may be
        restarting) and then for the broker's PUBACK."""
        if wait:
            assert self.connected.wait(20), f"{self.pile_id} not connected: {self.refused}"
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published(), f"broker did not ack {topic}"
        return info

    def send(self, kind: str, wait: bool = True, **fields) -> dict:
        """Publish a protocol message of `kind`; returns its payload."""
        data = body(kind, **fields)
        self.publish_raw(self.topic(kind), json.dumps(data).encode(), wait=wait)
        return data

    def online(self) -> None:
        self.publish_raw(self.topic("online"), b"1", retain=True)

    def vanish(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker sends the will."""
        self.client.loop_stop()
        self.client.socket().close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Worker:
    """`flask --app wsgi worker` as a subprocess, with its own env. `broker` is a
    tests.brokers.Broker (its backend login and client id) or a bare MQTT URL."""

    def __init__(self, db_url: str, broker, workdir: Path, **env):
        where = ({"MQTT_URL": broker, "MQTT_CLIENT_ID": f"backend-{workdir.name}"}
                 if isinstance(broker, str) else broker.backend_env())
        self.env = {**os.environ, "DATABASE_URL": db_url, "CHARGERS_ENV": "testing",
                    "PYTHONUNBUFFERED": "1", **where, **{k: str(v) for k, v in env.items()}}
        self.log = workdir / "worker.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.log, "a")
        out.write(f"--- start {self.starts}\n")
        out.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def stop(self, sig: str = "term", timeout: float = 20) -> int | None:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGKILL if sig == "kill" else signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def wait_log(self, text: str, timeout: float = 20) -> None:
        """Wait until the worker's log contains `text` since its last start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.log.read_text(errors="replace")
            if text in content.rsplit(f"--- start {self.starts}\n", 1)[-1]:
                return
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{content[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in worker log:\n{self.log.read_text()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def worker(app, alley_with_pile, broker, tmp_path):
    """The real worker subprocess on the test database and broker, subscribed."""
    w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path)
    w.start()
    w.wait_log("subscribed to")
    yield w
    code = w.stop("term")
    assert code in (0, None), w.output()[-3000:]
    assert "Traceback" not in w.output(), w.output()[-3000:]


@pytest.fixture
def start_worker(app, broker, tmp_path):
    """Start the real worker with these settings (`start_worker(CUTOFF_CONFIRM_S=4)`);
    each is stopped after the test, cleanly and with no traceback in its log."""
    started: list[Worker] = []

    def start(**env) -> Worker:
        w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path, **env)
        w.start()
        started.append(w)
        w.wait_log("subscribed to")
        return w

    yield start
    for w in started:
        code = w.stop("term")
        assert code in (0, None), w.output()[-3000:]
        assert "Traceback" not in w.output(), w.output()[-3000:]
