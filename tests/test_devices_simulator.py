"""Simulated piles against a real broker (a private Mosquitto, or the embedded
broker: tests/brokers.py): what they publish conforms to the
device protocol (validated with the ingest's own schemas), one charge reads as a
session with meters, faults appear and clear, and commands get acks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from chargers.mqtt_settings import parse_url
from chargers.protocol import payloads
from chargers.simulator import Behaviour, Simulation, alley_piles
from tests.device_clients import Peer, wait_until

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "chargers/v1"
FAST = dict(mean_idle_s=20, plug_to_start_s=(1, 3), need_wh=(20, 40), mean_stay_s=20,
            early_leave=0.0, fault_rate=0.0, start_charging=1.0)


@pytest.fixture
def backend(broker):
    peer = Peer(broker.port, "chargers-backend", *broker.backend_login)
    assert peer.connect()
    assert peer.subscribe(f"{PREFIX}/#") == 1
    yield peer
    peer.close()


@pytest.fixture
def run_sim(app, alley_with_pile, broker):
    """run_sim(speed, **behaviour) starts the simulation of alley `lane` in a thread."""
    started: list[tuple[Simulation, threading.Thread]] = []

    def start(speed: float = 120, seed: int = 7, **behaviour) -> Simulation:
        with app.app_context():
            piles = alley_piles("lane")
        sim = Simulation(piles, {"P-1": alley_with_pile}, parse_url(broker.url),
                         PREFIX, speed=speed, behaviour=Behaviour(**{**FAST, **behaviour}), seed=seed)
        thread = threading.Thread(target=sim.run, kwargs={"duration": 120}, daemon=True)
        thread.start()
        started.append((sim, thread))
        return sim

    yield start
    for sim, thread in started:
        sim.stop()
        thread.join(15)


def messages(peer: Peer, kind: str) -> list[dict]:
    return [json.loads(m.payload) for m in peer.received(f"{PREFIX}/P-1/{kind}")]


def check_conforms(peer: Peer) -> None:
    """Every message from P-1 passes the contract's schema; ids are unique; `seq`
    counts from 0 at each boot without a gap."""
    ids, seqs = set(), defaultdict(list)
    for m in peer.received():
        kind = m.topic.rsplit("/", 1)[1]
        if kind == "online":
            payloads.decode_online(m.payload)
            continue
        if kind == "cmd":
            continue
        model = payloads.decode(kind, m.payload)
        if kind in ("status", "meter", "session") or getattr(model, "port", None) is not None:
            assert 1 <= model.port <= 4
        assert model.id not in ids, f"duplicate id {model.id}"
        ids.add(model.id)
        boot = model.id.rsplit("-", 1)[0]
        seqs[boot].append(model.seq)
    for boot, seq in seqs.items():
        assert seq == list(range(len(seq))), f"seq of boot {boot}: {seq[:20]}"


def test_a_pile_boots_charges_and_finishes(run_sim, backend, broker):
    run_sim()
    # A whole charge on every port: start, meters, auto-stop `full`, unplug.
    wait_until(lambda: len([s for s in messages(backend, "session") if s["event"] == "stop"]) >= 4,
               60, "four sessions to finish")
    whole = ["available", "occupied", "charging", "finishing", "available"]

    def unplugged_port():
        for n in range(1, 5):
            if [s["status"] for s in messages(backend, "status") if s["port"] == n][:5] == whole:
                return n
        return None

    port_no = wait_until(unplugged_port, 60, "a port to be unplugged after its charge")

    online = backend.received(f"{PREFIX}/P-1/online")
    assert online[0].payload == b"1"
    boot = messages(backend, "boot")
    assert boot[0]["seq"] == 0 and boot[0]["ports"] == 4
    first_statuses = messages(backend, "status")[:4]
    assert [(s["port"], s["status"]) for s in first_statuses] == [(n, "available") for n in range(1, 5)]

    sessions = messages(backend, "session")
    meters = messages(backend, "meter")
    start = next(s for s in sessions if s["event"] == "start" and s["port"] == port_no)
    stop = next(s for s in sessions if s["event"] == "stop" and s["session"] == start["session"])
    charge = [m for m in meters if m["session"] == start["session"]]
    assert stop["reason"] == "full" and stop["port"] == start["port"]
    assert len(charge) >= 3
    energies = [m["energy_wh"] for m in charge]
    assert energies == sorted(energies) and stop["energy_wh"] == energies[-1]
    powers = [m["power_w"] for m in charge]
    assert 290 <= powers[0] <= 465  # a charger's constant draw …
    assert powers[-1] < powers[0] / 4  # … tapering to a trickle at the end
    port_statuses = [s["status"] for s in messages(backend, "status") if s["port"] == start["port"]]
    assert port_statuses[:5] == whole
    check_conforms(backend)

    # The retained `online 1` is there for whoever subscribes later.
    late = Peer(broker.port, "late", *broker.backend_login)
    try:
        assert late.connect()
        late.subscribe(f"{PREFIX}/P-1/online")
        got = late.wait_for(f"{PREFIX}/P-1/online")
        assert got[0].payload == b"1" and got[0].retain
    finally:
        late.close()


def test_faults_appear_and_clear(run_sim, backend):
    run_sim(speed=240, fault_rate=3600, mean_fault_s=30, start_charging=0.0, mean_idle_s=3600)
    wait_until(lambda: any(not f["active"] for f in messages(backend, "fault")), 60, "a fault to clear")
    faults = messages(backend, "fault")
    cleared = next(f for f in faults if not f["active"])
    raised = next(f for f in faults if f["active"] and f["code"] == cleared["code"]
                  and f.get("port") == cleared.get("port"))
    assert faults.index(raised) < faults.index(cleared)
    if raised.get("port"):
        statuses = [s for s in messages(backend, "status") if s["port"] == raised["port"]]
        assert any(s["status"] == "faulted" and s["error"] == raised["code"] for s in statuses)
    check_conforms(backend)


def test_commands_are_acked_and_obeyed(run_sim, backend):
    # Long charges, so ports stay charging while we command them.
    run_sim(speed=60, need_wh=(5000, 6000))
    wait_until(lambda: {s["port"] for s in messages(backend, "status") if s["status"] == "charging"}
               >= {1, 2, 3}, 30, "ports 1-3 charging")

    def command(cmd_id: str, action: str, port: int | None = None) -> dict:
        body = {"id": cmd_id, "ts": "2026-11-27T09:00:00+08:00", "action": action}
        if port is not None:
            body["port"] = port
        backend.publish(f"{PREFIX}/P-1/cmd", json.dumps(body))
        return wait_until(lambda: next((a for a in messages(backend, "ack") if a["cmd"] == cmd_id), None),
                          10, f"ack of {cmd_id}")

    assert command("c-stop", "stop", 1)["result"] == "accepted"
    # The ack comes first (as OCPP's RemoteStop answer does), then the session stop.
    stop = wait_until(lambda: next((s for s in messages(backend, "session")
                                    if s["event"] == "stop" and s["port"] == 1), None), 10, "stop")
    assert stop["reason"] == "remote"

    assert command("c-off", "disable", 2)["result"] == "accepted"
    wait_until(lambda: any(s["port"] == 2 and s["status"] == "unavailable"
                           for s in messages(backend, "status")), 10, "port 2 unavailable")
    assert command("c-on", "enable", 2)["result"] == "accepted"
    wait_until(lambda: [s["status"] for s in messages(backend, "status") if s["port"] == 2][-1]
               == "available", 10, "port 2 available again")

    assert command("c-bad", "stop", 9)["result"] == "rejected"
    assert command("c-what", "explode")["result"] == "rejected"

    assert command("c-reset", "reset")["result"] == "accepted"
    wait_until(lambda: len(messages(backend, "boot")) >= 2, 20, "the boot after reset")
    assert messages(backend, "boot")[-1]["seq"] == 0
    check_conforms(backend)


def test_simulate_command(app, app_config, alley_with_pile, broker, backend, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"P-1": alley_with_pile}))
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "MQTT_URL": broker.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "simulate", "--alley", "lane", "--speed", "60",
         "--secrets", str(secrets), "--duration", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        backend.wait_for(f"{PREFIX}/P-1/boot", timeout=30)
        wait_until(lambda: len(messages(backend, "status")) >= 4, 10, "port statuses")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    # Stopped on purpose, the pile says so (retained) before it leaves.
    online = [m.payload for m in backend.received(f"{PREFIX}/P-1/online")]
    wait_until(lambda: [m.payload for m in backend.received(f"{PREFIX}/P-1/online")][-1:] == [b"0"],
               10, "online 0")
    assert online[0] == b"1"
    check_conforms(backend)


def test_simulate_needs_secrets(runner, alley_with_pile, tmp_path):
    result = runner.invoke(args=["simulate", "--alley", "lane", "--secrets", str(tmp_path / "none.json")])
    assert result.exit_code != 0 and "seed-demo" in result.output
    result = runner.invoke(args=["simulate", "--alley", "nowhere"])
    assert result.exit_code != 0 and "no alley" in result.output
