"""The development broker of `make run` (`flask --app wsgi broker`): Mosquitto when
its binary is on the machine (`mosquitto.py`, with the configuration the project
generates), else the embedded amqtt broker (`amqtt_broker.py`, the only module that
imports amqtt). Either listens on 127.0.0.1:1883, or on a free port when that one is
taken, and writes its address and the backend's login, generated at every start, to
EMBEDDED_BROKER_FILE (mode 600), where the worker and the simulator find them when
MQTT_URL is empty. Production runs its own Mosquitto (README, `flask mqtt-auth`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

BACKEND_USER = "chargers-backend"
DEFAULT_PORT = 1883
KINDS = ("auto", "mosquitto", "embedded")


@dataclass
class BrokerInfo:
    """Where the broker listens and the backend's login."""

    host: str
    port: int
    username: str
    password: str

    def as_dict(self) -> dict:
        return {"host": self.host, "port": self.port, "username": self.username, "password": self.password}


def mosquitto_binary() -> str | None:
    """The Mosquitto executable, when installed (Debian puts it in /usr/sbin)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def write_private_json(path: Path, data: dict) -> None:
    """Atomic write, mode 600: the file holds the backend's password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_info_file(path: Path, port: int) -> None:
    """Remove the address file, unless another broker has written its own since."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("port") == port:
            path.unlink()


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        # As the listeners do: without it, the clients' connections to a just-stopped
        # broker (TIME_WAIT) made a restart move port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def candidate_ports(host: str, port: int, spare: int = 3) -> list[int]:
    """`port` when it is free, then a few free ones (a port can be taken meanwhile)."""
    return ([port] if port and port_free(host, port) else []) + [free_port(host) for _ in range(spare)]


def serve(app: Flask, host: str = "127.0.0.1", port: int = DEFAULT_PORT, kind: str = "auto",
          echo: Callable[[str], None] = print) -> int:
    """Run the broker of `kind` until SIGINT/SIGTERM; returns an exit status."""
    binary = mosquitto_binary()
    if kind == "mosquitto" and not binary:
        raise RuntimeError("the mosquitto binary is not installed (apt-get install mosquitto)")
    if kind in ("auto", "mosquitto") and binary:
        from . import mosquitto

        return mosquitto.serve(app, binary, host, port, echo)
    from . import amqtt_broker

    amqtt_broker.serve(app, host, port, echo)
    return 0
