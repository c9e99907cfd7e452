"""Simulated piles speaking the device protocol (docs/asyncapi.yaml).

Each pile is a device, not a backend: it has its own paho client (MQTT 3.1.1,
client id = username = pile id, its secret, keepalive 60, last will `online 0`),
its own state in plain objects, and reads nothing from the database but the
alley's pile list and port counts (done once, by the command).

Residents come and go on each port: plug in (`occupied`), a session starts
(`charging`), meters every 60 simulated seconds on a charger's curve (a constant
300–450 W, then tapering to a trickle, auto-stop `full`), the bike stays plugged a
while (`finishing`), is unplugged (`available`). Some residents leave early. Rare
faults appear and clear. Commands on `cmd` are answered with `ack`.

Sessions start with the cards of the alley's demo residents (services/demo/cards.py,
the list `seed-demo` makes accounts of), a card in one place at a time, and a small
share of strangers' cards; an alley without a demo roster sees only strangers.

Simulated time runs `speed` times faster than real time; the `ts` of every
message is the real clock (as a pile's would be), so only durations shrink.
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets as _random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .mqtt_settings import BrokerAddress, broker_address
from .protocol import topics
from .services.demo.cards import CardPicker
from .services.demo.cards import anonymous as anonymous_cards

log = logging.getLogger("chargers.simulator")

CHINA = timezone(timedelta(hours=8))  # piles in the field keep local time
KEEPALIVE_S = 60
# Port faults seen in the field, most common first; smoke and over-temperature are
# rare (and make the backend cut the port off).
PORT_FAULTS = (("over_current", 40), ("overload", 25), ("ground_fault", 10), ("meter_failure", 8),
               ("relay_stuck", 5), ("over_temperature", 2), ("smoke", 0.5))
PILE_FAULTS = (("under_voltage", 50), ("over_voltage", 30), ("communication", 20))


@dataclass
class Behaviour:
    """How residents and piles behave, in simulated seconds (tests shrink these)."""

    mean_idle_s: float = 60 * 60  # a free port waits this long (mean) for the next bike
    plug_to_start_s: tuple[float, float] = (5, 40)  # card swipe / app after plugging in
    need_wh: tuple[float, float] = (300, 1100)  # what a battery takes to be full
    power_w: tuple[float, float] = (300, 450)  # a charger's constant-current draw
    trickle_w: float = 12  # below this the pile calls the battery full
    mean_stay_s: float = 25 * 60  # plugged after the charge ends
    early_leave: float = 0.12  # share of residents who unplug before full
    meter_every_s: float = 60  # simulated seconds, like every duration above
    heartbeat_every_s: float = 60  # real seconds: liveness is about the real connection
    fault_rate: float = 0.02  # faults per pile per simulated hour
    mean_fault_s: float = 6 * 60  # until a fault clears
    start_charging: float = 0.0  # share of ports that start the run already plugged
    # …and what share of a whole charge their bikes still need: (0.15, 1.0) spreads
    # their ends over a charge's length, as in an alley at any hour, instead of all
    # ending together one whole charge after the start
    plugged_need: tuple[float, float] = (1.0, 1.0)
    # Which battery each session brings (BATTERIES), by weight: mostly healthy packs,
    # and now and then one the backend should catch (the demo: a few a day).
    battery_mix: tuple[tuple[str, float], ...] = (
        ("lithium", 0.62), ("lead_acid", 0.35), ("modified", 0.008), ("no_taper", 0.008),
        ("swinging", 0.008), ("heating", 0.006))
    v11_share: float = 0.5  # share of piles with the v1.1 `config` feature
    # v1.1 `authorize`: the features such piles announce (with `config`), and how long
    # (simulated seconds, mean) a resident whose charge was queued waits before leaving
    # (None: waits as long as it takes), and how long one who was refused stays.
    v11_features: tuple[str, ...] = ("config",)
    queue_patience_s: float | None = None
    refused_stay_s: float = 60.0
    answer_wait_s: float = 10.0  # real seconds the pile waits for an `authorize` answer


@dataclass
class PortState:
    number: int
    status: str = "available"
    enabled: bool = True
    session: str | None = None
    card: str | None = None
    energy_wh: float = 0.0  # of the current session
    need_wh: float = 0.0
    power_w: float = 0.0
    p0_w: float = 0.0
    leave_at_wh: float | None = None  # an early leaver unplugs at this energy
    fault: str | None = None
    next_at: float = 0.0  # simulated time of the port's next step
    next_meter_at: float = 0.0
    plugged_before: bool = False  # plugged in before the run started
    battery: str = "lithium"  # BATTERIES: how this session's pack and charger draw
    temp_c: float = 24.0
    swing: int = 1
    # v1.1 `authorize`: the question in flight (its id, the real deadline for the answer),
    # a queued charge's ref and when the resident gives up, the limits of the session.
    auth_ref: str | None = None
    auth_sent: float = 0.0  # time.monotonic() of the publish
    auth_sent_wall: float = 0.0  # and time.time()
    auth_deadline: float = 0.0
    queued_ref: str | None = None
    leave_queue_at: float | None = None
    max_wh: float | None = None
    max_minutes: float | None = None
    started_sim: float = 0.0
    answer: str | None = None  # the last answer the port showed (accepted/queued/rejected/offline)


# How each kind of pack and charger draws (BATTERIES): where constant current gives way
# to the taper (a share of what the pack takes), and what is wrong with it, if anything.
# Lithium packs taper late (~80 %), lead-acid earlier (~70 %); a modified "high-power"
# pack draws 900-1300 W; a failing pack never tapers; a swinging charger's draw jumps
# by ±45 % between readings; a heating port climbs ~0.7 °C a minute.
CONFIG_KEYS = ("max_power_w", "overload_hold_s", "full_stop_power_w", "full_stop_hold_s",
               "max_session_s", "offline_policy", "offline_max_minutes")
BATTERIES = ("lithium", "lead_acid", "modified", "no_taper", "swinging", "heating")
TAPER_AT = {"lead_acid": 0.7}


def battery_step(port: PortState, dt_h: float, rng: random.Random) -> tuple[float, float, float]:
    """One reading of the port's charge: (power W, power min W, power max W) over the
    interval; advances the port's energy and temperature."""
    need, kind = port.need_wh, port.battery
    if kind == "no_taper":  # bulk power until someone stops it
        power = port.p0_w * rng.uniform(0.97, 1.03)
        port.energy_wh += power * dt_h
        spread = (0.97, 1.03)
    elif kind == "swinging" and port.energy_wh < 0.8 * need:
        port.swing = -port.swing
        power = port.p0_w * (1 + 0.45 * port.swing) * rng.uniform(0.97, 1.03)
        port.energy_wh = min(0.8 * need, port.energy_wh + power * dt_h)
        spread = (0.5, 1.5)
    else:
        bulk = TAPER_AT.get(kind, 0.8)
        if port.energy_wh < bulk * need:
            power = port.p0_w * rng.uniform(0.97, 1.03)
            port.energy_wh = min(bulk * need, port.energy_wh + power * dt_h)
        else:
            tail = (1 - bulk) * need
            rest = (need - port.energy_wh) * math.exp(-port.p0_w * dt_h / tail)
            port.energy_wh = need - rest
            power = port.p0_w * rest / tail
        spread = (0.97, 1.03)
    target = 24 + power / 40
    if kind == "heating":
        port.temp_c += 0.7 * dt_h * 60
    else:
        port.temp_c += (target - port.temp_c) * 0.3
    return power, power * spread[0], power * spread[1]


@dataclass
class PileState:
    pile_id: str
    ports: list[PortState]
    lifetime_wh: float = 0.0  # the pile's own meter, reported at session start
    pile_fault: str | None = None
    pile_fault_until: float = 0.0
    next_heartbeat_at: float = 0.0  # time.monotonic()
    next_fault_check_at: float = 0.0


class CardBox:
    """The cards of one simulated alley, shared by its piles: which are charging now
    (the sim loop starts sessions, paho threads stop them on commands)."""

    def __init__(self, picker: CardPicker):
        self.picker = picker
        self.busy: Counter[str] = Counter()
        self.lock = threading.Lock()

    def take(self, rng: random.Random) -> str:
        with self.lock:
            card = self.picker.pick(rng, self.busy)
            self.busy[card] += 1
            return card

    def give_back(self, card: str | None) -> None:
        with self.lock:
            if card is not None and self.busy[card] > 0:
                self.busy[card] -= 1
                if not self.busy[card]:
                    del self.busy[card]


def now_ts() -> str:
    """The pile's clock, RFC 3339 with offset."""
    return datetime.now(CHINA).isoformat(timespec="seconds")


class SimPile:
    """One pile: state, a paho client and the resident behaviour on its ports."""

    MODEL, FIRMWARE, MAX_POWER_W = "EB-SIM", "2.4.1-sim", 1000

    def __init__(self, pile_id: str, ports: int, secret: str, address: BrokerAddress, prefix: str,
                 behaviour: Behaviour, clock: Callable[[], float], rng: random.Random,
                 cards: CardBox | None = None, features: tuple[str, ...] = ()):
        self.id = pile_id
        # v1.1: `config`, `authorize`, `start` (a pile without keeps v1)
        self.features = tuple(features)
        # (ms from the authorize's publish to its answer, result) for each answer heard
        self.auth_latencies: list[tuple[float, str]] = []
        # (the question's id, wall-clock time it was published, and its answer heard):
        # a bench splits the round trip with the backend's own times.
        self.auth_walls: list[tuple[str, float, float]] = []
        self.offline_starts = 0
        self.config_version: int | None = None
        self.config_settings: dict = {}
        self.cards = cards or CardBox(anonymous_cards())
        self.prefix = prefix.rstrip("/")
        self.b = behaviour
        self.clock = clock  # simulated seconds since the start
        self.rng = rng
        self.state = PileState(pile_id, [PortState(n) for n in range(1, ports + 1)])
        self.lock = threading.RLock()  # paho's thread (commands, connects) vs the sim loop
        self.seq = 0
        self.boot_token = ""
        self.sessions = 0
        self.connected = threading.Event()
        self.booted = False
        # Commands answered, by id: the protocol makes a command idempotent at the pile.
        self.answered: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        now = clock()
        for port in self.state.ports:
            if rng.random() < behaviour.start_charging:
                port.next_at = now + rng.uniform(0, 5)
                port.plugged_before = True
            else:
                port.next_at = now + rng.expovariate(1 / behaviour.mean_idle_s)
        self.state.next_fault_check_at = now + 60
        self.address = address
        self.client = self._make_client(secret, address)

    # --- MQTT -----------------------------------------------------------------

    def topic(self, kind: str) -> str:
        return topics.build(self.prefix, self.id, kind)

    def _make_client(self, secret: str, address: BrokerAddress) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.id,
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.username_pw_set(self.id, secret)
        client.will_set(self.topic("online"), "0", qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        if address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(address.host, address.port, keepalive=KEEPALIVE_S)
        return client

    def start(self) -> None:
        self.client.loop_start()

    def announce_offline(self) -> mqtt.MQTTMessageInfo | None:
        """A pile powering off on purpose says `online 0` (retained) first."""
        if not self.connected.is_set():
            return None
        return self.client.publish(self.topic("online"), "0", qos=1, retain=True)

    def stop(self, announce: bool = True, timeout: float = 3.0) -> None:
        """Power off: announce (optionally), then disconnect."""
        info = self.announce_offline() if announce else None
        if info is not None:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def move_to(self, address: BrokerAddress) -> None:
        """The broker moved (the embedded one restarted on another port): go there."""
        self.address = address
        self.booted = False
        self.client.disconnect()
        self.client.loop_stop()
        self.client.connect_async(address.host, address.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        try:
            if reason_code.is_failure:
                log.warning("%s: broker refused the connection: %s", self.id, reason_code)
                return
            client.subscribe(self.topic("cmd"), qos=1)
            with self.lock:
                client.publish(self.topic("online"), "1", qos=1, retain=True)
                self._boot()
            self.connected.set()
        except Exception:  # an exception escaping a paho callback kills its thread
            log.exception("%s: on_connect failed", self.id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None):
        self.connected.clear()
        if reason_code != 0:
            log.info("%s: disconnected (%s); paho reconnects", self.id, reason_code)

    def _on_message(self, client, userdata, message):
        if message.topic != self.topic("cmd"):  # a pile listens to its own cmd only
            log.warning("%s: unexpected message on %s", self.id, message.topic)
            return
        try:
            self.handle_command(message.payload)
        except Exception:
            log.exception("%s: command %r failed", self.id, message.payload[:200])

    def send(self, kind: str, **fields) -> dict:
        """Publish one JSON message (QoS 1) with id, ts and seq; returns the payload."""
        with self.lock:
            payload = {"id": f"{self.boot_token}-{self.seq}", "ts": now_ts(), "seq": self.seq, **fields}
            self.seq += 1
            self.client.publish(self.topic(kind), json.dumps(payload, separators=(",", ":")), qos=1)
            return payload

    # --- device behaviour ------------------------------------------------------

    def _boot(self) -> None:
        """After every (re)connect: boot (seq from 0, ids fresh), then every port's
        status, as OCPP chargers send StatusNotification for each connector."""
        self.seq = 0
        self.boot_token = _random.token_hex(4)
        extra = {"features": list(self.features)} if self.features else {}
        self.send("boot", model=self.MODEL, firmware=self.FIRMWARE,
                  ports=len(self.state.ports), max_power_w=self.MAX_POWER_W, **extra)
        if self.config_version is not None:  # a pile keeps what it applied, and says so
            self.send("config", version=self.config_version, settings=self.config_settings)
        for port in self.state.ports:
            self._status(port)
        self.booted = True

    def _status(self, port: PortState, status: str | None = None, error: str | None = None) -> None:
        if status is not None:
            port.status = status
        # "leaving": a refused or tired resident still unplugging: occupied to the world.
        fields = {"port": port.number,
                  "status": "occupied" if port.status == "leaving" else port.status}
        if port.status == "faulted" and (error or port.fault):
            fields["error"] = error or port.fault
        self.send("status", **fields)

    def _ask(self, port: PortState, now: float) -> None:
        """A card presented at a pile with `authorize`: ask, then wait for the answer
        (up to `answer_wait_s` real seconds) before any power flows."""
        port.card = self.cards.take(self.rng)
        payload = self.send("authorize", port=port.number, card=port.card)
        port.auth_ref, port.answer = payload["id"], None
        port.auth_sent, port.auth_sent_wall = time.monotonic(), time.time()
        port.auth_deadline = port.auth_sent + self.b.answer_wait_s

    def _give_up(self, port: PortState, now: float, stay_s: float) -> None:
        """The resident unplugs without charging (refused, or tired of waiting)."""
        self.cards.give_back(port.card)
        port.card, port.auth_ref, port.queued_ref, port.leave_queue_at = None, None, None, None
        port.status = "leaving"
        port.next_at = now + stay_s

    def _answered(self, port: PortState, cmd: dict, now: float) -> None:
        result = cmd.get("result")
        self.auth_latencies.append(((time.monotonic() - port.auth_sent) * 1000, str(result)))
        self.auth_walls.append((str(port.auth_ref), port.auth_sent_wall, time.time()))
        port.auth_ref, port.answer = None, str(result)
        if result == "accepted":
            self._start_session(port, now, cmd.get("max_wh"), cmd.get("max_minutes"))
        elif result == "queued":
            port.queued_ref = cmd.get("ref")
            patience = self.b.queue_patience_s
            port.leave_queue_at = (None if patience is None
                                   else now + self.rng.expovariate(1 / patience))
        else:
            self._give_up(port, now, self.b.refused_stay_s)

    def _no_answer(self, port: PortState, now: float) -> None:
        """No answer in time: the pile's `offline_policy` decides (accept by default)."""
        port.auth_ref, port.answer = None, "offline"
        if self.config_settings.get("offline_policy", "accept") == "accept":
            self.offline_starts += 1
            limit = self.config_settings.get("offline_max_minutes")
            self._start_session(port, now, None, limit)
        else:
            self._give_up(port, now, self.b.refused_stay_s)

    def _start_session(self, port: PortState, now: float, max_wh: float | None = None,
                       max_minutes: float | None = None) -> None:
        b, rng = self.b, self.rng
        self.sessions += 1
        port.session = f"S{self.boot_token}{self.sessions:04d}"
        if port.card is None:
            port.card = self.cards.take(rng)
        port.max_wh, port.max_minutes, port.started_sim = max_wh, max_minutes, now
        port.energy_wh = 0.0
        port.need_wh = rng.uniform(*b.need_wh)
        if port.plugged_before:
            port.need_wh *= rng.uniform(*b.plugged_need)
            port.plugged_before = False
        kinds, weights = zip(*b.battery_mix, strict=True)
        port.battery = rng.choices(kinds, weights)[0]
        port.p0_w = (rng.uniform(900, 1300) if port.battery == "modified"
                     else rng.uniform(*b.power_w))
        port.power_w, port.temp_c, port.swing = port.p0_w, 24.0 + rng.uniform(-1, 1), 1
        port.leave_at_wh = (rng.uniform(0.1, 0.9) * port.need_wh) if rng.random() < b.early_leave else None
        self.send("session", event="start", port=port.number, session=port.session, card=port.card,
                  meter_wh=round(self.state.lifetime_wh, 1))
        self._status(port, "charging")
        port.next_meter_at = now + b.meter_every_s

    def _stop_session(self, port: PortState, reason: str) -> None:
        if port.session is None:
            return
        self.state.lifetime_wh += port.energy_wh
        self.send("session", event="stop", port=port.number, session=port.session,
                  energy_wh=round(port.energy_wh, 1), reason=reason)
        self.cards.give_back(port.card)
        port.session = None
        port.power_w = 0.0

    def _meter(self, port: PortState) -> None:
        """One reading of the port's charge (see `battery_step`); a pile with the v1.1
        features also says the lowest and highest power since the last reading."""
        power, low, high = battery_step(port, self.b.meter_every_s / 3600, self.rng)
        if port.max_wh is not None and port.energy_wh > port.max_wh:
            port.energy_wh = port.max_wh  # the pile switches off at its limit
        port.power_w = power
        voltage = self.rng.uniform(218, 232)
        extra = ({"power_min_w": round(low, 1), "power_max_w": round(high, 1)}
                 if self.features else {})
        self.send("meter", port=port.number, session=port.session, power_w=round(power, 1),
                  energy_wh=round(port.energy_wh, 1), voltage_v=round(voltage, 1),
                  current_a=round(power / voltage, 2),
                  temp_c=round(port.temp_c + self.rng.uniform(-0.5, 0.5), 1), **extra)

    def tick(self) -> None:
        """Advance every port to the simulated now (called by the run loop)."""
        if not self.connected.is_set() or not self.booted:
            return
        with self.lock:
            now = self.clock()
            st, b = self.state, self.b
            if time.monotonic() >= st.next_heartbeat_at:
                st.next_heartbeat_at = time.monotonic() + b.heartbeat_every_s
                self.send("heartbeat", rssi=self.rng.randint(-85, -55))
            if now >= st.next_fault_check_at:
                self._maybe_fault(now)
            if st.pile_fault and now >= st.pile_fault_until:
                self.send("fault", code=st.pile_fault, active=False)
                st.pile_fault = None
            for port in st.ports:
                self._tick_port(port, now)

    def _tick_port(self, port: PortState, now: float) -> None:
        b, rng = self.b, self.rng
        if port.auth_ref is not None:  # waiting for the answer to `authorize`
            if time.monotonic() >= port.auth_deadline:
                self._no_answer(port, now)
            return
        if port.queued_ref is not None:  # queued: waits for `start`, or gives up
            if port.leave_queue_at is not None and now >= port.leave_queue_at:
                self._give_up(port, now, 0)
            return
        if port.status == "charging" and port.session:
            while now >= port.next_meter_at and port.session:
                port.next_meter_at += b.meter_every_s
                self._meter(port)
                if port.max_wh is not None and port.energy_wh >= port.max_wh:
                    self._stop_session(port, "balance")  # the limit we were given
                    self._status(port, "finishing")
                    port.next_at = now + rng.expovariate(1 / b.mean_stay_s)
                elif (port.max_minutes is not None
                      and now - port.started_sim >= port.max_minutes * 60):
                    self._stop_session(port, "timeout")
                    self._status(port, "finishing")
                    port.next_at = now + rng.expovariate(1 / b.mean_stay_s)
                elif port.leave_at_wh is not None and port.energy_wh >= port.leave_at_wh:
                    self._stop_session(port, "unplugged")
                    self._status(port, "available")
                    port.next_at = now + rng.expovariate(1 / b.mean_idle_s)
                elif port.power_w < b.trickle_w:
                    self._stop_session(port, "full")
                    self._status(port, "finishing")
                    port.next_at = now + rng.expovariate(1 / b.mean_stay_s)
            return
        if now < port.next_at:
            return
        if port.status == "available" and port.enabled:
            self._status(port, "occupied")
            port.next_at = now + rng.uniform(*b.plug_to_start_s)
        elif port.status == "occupied" and port.session is None:
            if "authorize" in self.features:
                self._ask(port, now)
            else:
                self._start_session(port, now)
        elif port.status == "leaving":
            self._status(port, "available")
            port.next_at = now + rng.expovariate(1 / b.mean_idle_s)
        elif port.status == "finishing":
            self._status(port, "available")
            port.next_at = now + rng.expovariate(1 / b.mean_idle_s)
        elif port.status == "faulted" and port.fault:
            self.send("fault", port=port.number, code=port.fault, active=False)
            port.fault = None
            self._status(port, "available" if port.enabled else "unavailable")
            port.next_at = now + rng.expovariate(1 / b.mean_idle_s)

    def _maybe_fault(self, now: float) -> None:
        st, b, rng = self.state, self.b, self.rng
        st.next_fault_check_at = now + 60
        if rng.random() >= b.fault_rate / 60:  # rate per hour, checked each minute
            return
        if rng.random() < 0.2:
            if st.pile_fault is None:
                st.pile_fault = _weighted(rng, PILE_FAULTS)
                st.pile_fault_until = now + rng.expovariate(1 / b.mean_fault_s)
                value = rng.uniform(170, 185) if st.pile_fault == "under_voltage" else rng.uniform(255, 265)
                self.send("fault", code=st.pile_fault, active=True, value=round(value, 1),
                          detail="supply voltage out of range")
            return
        candidates = [p for p in st.ports if p.fault is None and p.enabled]
        if not candidates:
            return
        port = rng.choice(candidates)
        port.fault = _weighted(rng, PORT_FAULTS)
        self.send("fault", port=port.number, code=port.fault, active=True)
        self._stop_session(port, "fault")
        self._status(port, "faulted", port.fault)
        port.next_at = now + rng.expovariate(1 / b.mean_fault_s)

    def handle_command(self, raw: bytes) -> None:
        """Answer a `cmd` message with an `ack` (and act on it)."""
        try:
            cmd = json.loads(raw)
            cmd_id, action = cmd["id"], cmd["action"]
            if action == "authorize":  # an answer, not a command: never acked
                self._on_answer(cmd)
                return
            port_no = cmd.get("port")
            if not isinstance(cmd_id, str) or not 1 <= len(cmd_id) <= 64:
                raise ValueError("id")
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable command %r", self.id, raw[:200])
            return
        reset = False

        def ack(result: str, detail: str | None = None) -> None:
            self.answered[cmd_id] = (result, detail)
            while len(self.answered) > 256:
                self.answered.popitem(last=False)
            self.send("ack", cmd=cmd_id, result=result, **({"detail": detail} if detail else {}))

        with self.lock:
            if cmd_id in self.answered:
                # The same id again (a re-send): acked again, not acted on again.
                result, detail = self.answered[cmd_id]
                self.send("ack", cmd=cmd_id, result=result, **({"detail": detail} if detail else {}))
                return
            ports = self.state.ports
            if port_no is not None and not (isinstance(port_no, int) and 1 <= port_no <= len(ports)):
                ack("rejected", detail="no such port")
                return
            targets = [ports[port_no - 1]] if port_no else list(ports)
            now = self.clock()
            if action == "stop":
                if port_no is None or targets[0].session is None:
                    ack("rejected", detail="no session on that port")
                    return
                ack("accepted")
                port = targets[0]
                self._stop_session(port, "remote")
                self._status(port, "finishing")
                port.next_at = now + self.rng.expovariate(1 / self.b.mean_stay_s)
            elif action == "disable":
                ack("accepted")
                for port in targets:
                    port.enabled = False
                    self._stop_session(port, "remote")
                    if port.status != "faulted":
                        self._status(port, "unavailable")
            elif action == "enable":
                ack("accepted")
                for port in targets:
                    port.enabled = True
                    if port.status == "unavailable":
                        self._status(port, "available")
                        port.next_at = now + self.rng.expovariate(1 / self.b.mean_idle_s)
            elif action == "start" and "start" in self.features:
                port = targets[0] if port_no else None
                if (port is None or port.queued_ref is None or port.queued_ref != cmd.get("ref")
                        or port.status != "occupied"):
                    ack("rejected", detail="not_occupied")
                    return
                ack("accepted")
                port.queued_ref, port.leave_queue_at = None, None
                self._start_session(port, now, cmd.get("max_wh"), cmd.get("max_minutes"))
            elif action == "config" and "config" in self.features:
                ack("accepted")
                settings = cmd.get("settings") if isinstance(cmd.get("settings"), dict) else {}
                self.config_version = cmd.get("version")
                self.config_settings = {k: v for k, v in settings.items() if k in CONFIG_KEYS}
                self.send("config", version=self.config_version, settings=self.config_settings)
            elif action == "reset":
                ack("accepted")
                for port in ports:
                    self._stop_session(port, "remote")
                    port.status = "available" if port.enabled and not port.fault else port.status
                    port.next_at = now + self.rng.expovariate(1 / self.b.mean_idle_s)
                reset = True
            else:
                ack("rejected", detail=f"unknown action {str(action)[:32]}")
        if reset:
            # A reboot: the connection drops and comes back, then `boot` again.
            threading.Thread(target=self._reboot, daemon=True).start()

    def _on_answer(self, cmd: dict) -> None:
        """The answer to an `authorize`: acted on only while that port still waits for
        it (an answer whose `ref` the pile no longer waits for is ignored)."""
        port_no = cmd.get("port")
        with self.lock:
            for port in self.state.ports:
                if port.auth_ref is not None and port.auth_ref == cmd.get("ref") and (
                        port_no is None or port_no == port.number):
                    self._answered(port, cmd, self.clock())
                    return

    def _reboot(self) -> None:
        time.sleep(0.5)  # let the ack go out
        self.booted = False
        self.stop(announce=True)
        time.sleep(2)
        self.client.connect_async(self.address.host, self.address.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()


def _weighted(rng: random.Random, table) -> str:
    codes, weights = zip(*table, strict=True)
    return rng.choices(codes, weights)[0]


class Simulation:
    """All piles of an alley against one broker; `run()` blocks until stopped."""

    def __init__(self, piles: list[tuple[str, int]], secrets: dict[str, str], address: BrokerAddress,
                 prefix: str, speed: float = 1.0, behaviour: Behaviour | None = None,
                 seed: int | None = None, cards: CardPicker | None = None):
        self.speed = speed
        box = CardBox(cards or anonymous_cards())
        self.behaviour = behaviour or Behaviour()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        rng = random.Random(seed)
        self.piles: list[SimPile] = []
        for pile_id, ports in piles:
            if pile_id not in secrets:
                log.warning("%s: no secret in the secrets file; skipped", pile_id)
                continue
            features = (self.behaviour.v11_features if rng.random() < self.behaviour.v11_share
                        else ())
            self.piles.append(SimPile(pile_id, ports, secrets[pile_id], address, prefix, self.behaviour,
                                      self.clock, random.Random(rng.random()), box, features))

    def clock(self) -> float:
        """Simulated seconds since the start."""
        return (time.monotonic() - self._t0) * self.speed

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None, step: float = 0.1,
            follow: Callable[[], BrokerAddress | None] | None = None) -> None:
        """Connect every pile, then tick until `duration` real seconds or stop().
        `follow` (the embedded broker's file) is re-read every few seconds; when the
        broker comes back elsewhere, the piles follow it."""
        for pile in self.piles:
            pile.start()
        deadline = None if duration is None else time.monotonic() + duration
        next_follow = time.monotonic() + 3
        try:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                for pile in self.piles:
                    try:
                        pile.tick()
                    except Exception:  # one pile's bug must not stop the others
                        log.exception("%s: tick failed", pile.id)
                if follow is not None and time.monotonic() >= next_follow:
                    next_follow = time.monotonic() + 3
                    self._follow(follow())
                # At high speed a step covers several simulated minutes; tick() catches up.
                self._stop.wait(max(0.02, min(step, 1.0 / max(self.speed, 1e-9))))
        finally:
            self._power_off()

    def _follow(self, address: BrokerAddress | None) -> None:
        for pile in self.piles:
            current = pile.address
            if address and (address.host, address.port) != (current.host, current.port):
                log.info("%s: broker moved to %s:%s", pile.id, address.host, address.port)
                pile.move_to(address)

    def _power_off(self, timeout: float = 2.0) -> None:
        """Announce `online 0` for every pile at once, wait briefly, disconnect all
        (quick enough for honcho's Ctrl-C grace period)."""
        infos = [pile.announce_offline() for pile in self.piles]
        end = time.monotonic() + timeout
        for info in infos:
            if info is None:
                continue
            try:
                info.wait_for_publish(max(0.01, end - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        # paho's loop_stop() waits out a reconnect back-off (up to a second each):
        # stop the piles side by side, not one after another.
        stoppers = [threading.Thread(target=pile.stop, kwargs={"announce": False}, daemon=True)
                    for pile in self.piles]
        for t in stoppers:
            t.start()
        end = time.monotonic() + timeout
        for t in stoppers:
            t.join(max(0.01, end - time.monotonic()))


def load_secrets(path: Path) -> dict[str, str]:
    """{pile_id: secret} from the JSON file `flask seed-demo` writes."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise click.ClickException(f"no secrets file {path}; run `flask --app wsgi seed-demo` "
                                   "or pass --secrets FILE") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a JSON object {{pile_id: secret}}")
    return {str(k): str(v) for k, v in data.items()}


def wait_for_broker(config, timeout: float) -> BrokerAddress:
    """MQTT_URL, or the embedded broker's file once the broker has written it."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        address = broker_address(config)
        if address is not None:
            return address
        if time.monotonic() >= deadline:
            raise click.ClickException(f"no broker: MQTT_URL is empty and {config['EMBEDDED_BROKER_FILE']} "
                                       f"did not appear within {timeout:.0f} s (start `flask broker`)")
        if not announced:
            click.echo(f"waiting for the embedded broker ({config['EMBEDDED_BROKER_FILE']})…")
            announced = True
        time.sleep(0.5)


def alley_piles(slug: str) -> list[tuple[str, int]]:
    """(pile id, port count) of the alley's piles: all the simulator reads from the DB."""
    from sqlalchemy import select

    from .extensions import db
    from .models import Alley, Pile

    alley = db.session.scalar(select(Alley).where(Alley.slug == slug))
    if alley is None:
        raise click.ClickException(f"no alley {slug!r}")
    rows = db.session.execute(select(Pile.id, Pile.port_count).where(Pile.alley_id == alley.id)
                              .order_by(Pile.id)).all()
    db.session.remove()
    return [(pile_id, ports) for pile_id, ports in rows]
