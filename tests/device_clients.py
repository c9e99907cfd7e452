"""A small paho client for tests: connect and wait for the broker's answer,
subscribe and read the granted QoS, record what arrives, poll with a deadline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    mid: int = 0
    dup: bool = False


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll `predicate` until it is truthy (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Peer:
    """One MQTT 3.1.1 client with a recorded inbox."""

    def __init__(self, port: int, client_id: str, username: str | None = None,
                 password: str | None = None, clean_session: bool = True, host: str = "127.0.0.1",
                 manual_ack: bool = False):
        self.host, self.port = host, port
        self.inbox: list[Received] = []
        self.connack: mqtt.ReasonCode | None = None
        self.session_present: bool | None = None
        self.disconnects = 0  # times the connection ended other than by close()
        self._closing = False
        self._connected = threading.Event()
        self._subacks: dict[int, list] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=clean_session,
                                  manual_ack=manual_ack)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_disconnect(self, *args, **kwargs):
        if not self._closing:
            self.disconnects += 1
        self._connected.set()  # hung up: no CONNACK

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        self.connack = reason_code
        self.session_present = bool(flags.session_present)
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        self._subacks[mid] = reason_codes

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.inbox.append(Received(message.topic, message.payload, bool(message.retain), message.qos,
                                       message.mid, bool(message.dup)))

    def connect(self, timeout: float = 10.0) -> bool:
        """Connect; True when the broker accepted, False when it refused or hung up."""
        self._connected.clear()
        self.connack = None
        self._closing = False
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError:
            return False
        self.client.loop_start()
        self._connected.wait(timeout)
        ok = self.connack is not None and not self.connack.is_failure
        if not ok:
            self.close()
        return ok

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> int:
        """Subscribe and return the granted QoS (128 = refused)."""
        _, mid = self.client.subscribe(topic, qos)
        codes = wait_until(lambda: self._subacks.get(mid), timeout, f"SUBACK for {topic}")
        return codes[0].value

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False, timeout: float = 10.0):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(timeout)
            assert info.is_published(), f"no PUBACK for {topic}"
        return info

    def received(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.inbox if topic is None or m.topic == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Wait until `count` messages on `topic` arrived; return them."""
        return wait_until(lambda: (lambda got: got if len(got) >= count else None)(self.received(topic)),
                          timeout, f"{count} message(s) on {topic}")

    def die(self) -> None:
        """Vanish like a SIGKILLed process: no DISCONNECT, no PUBACK for what is pending."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers():
    """peers(port, client_id, username, password) → a Peer, closed after the test."""
    made: list[Peer] = []

    def make(port, client_id, username=None, password=None, **kw) -> Peer:
        peer = Peer(port, client_id, username, password, **kw)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()
