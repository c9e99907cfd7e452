"""Real brokers for tests: a private Mosquitto on a free port when the binary is
there (never the machine's shared one), else the embedded amqtt broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


class Mosquitto:
    """A private mosquitto process; restartable on the same port and state."""

    def __init__(self, workdir: Path, extra_conf: str = ""):
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen | None = None

    def write_conf(self) -> None:
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            f"log_dest file {self.log}\nlog_type all\n"
            "max_queued_messages 100000\n"
            # As root, mosquitto drops to user `mosquitto`, which cannot write the
            # test's private folder: no log, and silently no persistence.
            + ("user root\n" if os.geteuid() == 0 else "")
            + (self.extra_conf or "allow_anonymous true\n")
        )

    def start(self) -> None:
        self.write_conf()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self, sig: str = "term") -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if sig == "kill" else self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def mosquitto(tmp_path):
    """A private, anonymous Mosquitto (skips only where the binary is missing;
    the `broker` fixture falls back to the embedded broker instead)."""
    if not MOSQUITTO:
        pytest.skip("mosquitto binary not installed")
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()
