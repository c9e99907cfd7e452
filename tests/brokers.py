"""Real brokers for tests, behind one interface (`Broker`): a private Mosquitto on
a free port (never the machine's shared one), or the embedded amqtt broker
(`flask --app wsgi broker`) as a subprocess. The `broker` fixture picks one:
CHARGERS_TEST_BROKER=mosquitto|embedded, by default Mosquitto where the binary
exists and the embedded broker otherwise, so the MQTT tests never skip for want
of Mosquitto. Piles log in with their id and secret on both (Mosquitto here
allows anonymous logins, so it accepts and ignores them; the embedded broker
checks them against the database)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
KINDS = ("mosquitto", "embedded")
# CI sets CHARGERS_TEST_STRICT=1 (.ci/run installs Mosquitto and Chromium): a test
# that would skip for want of either fails instead.
STRICT = os.environ.get("CHARGERS_TEST_STRICT", "") not in ("", "0")


def skip_unless(found, what: str) -> None:
    """Skip the test when `found` is falsy (fail under CHARGERS_TEST_STRICT=1)."""
    if not found:
        if STRICT:
            pytest.fail(f"{what} is not installed (CHARGERS_TEST_STRICT=1)")
        pytest.skip(f"{what} not installed")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def broker_kind() -> str:
    """The broker the suite runs on: CHARGERS_TEST_BROKER, else Mosquitto when its
    binary is installed, else the embedded broker."""
    kind = os.environ.get("CHARGERS_TEST_BROKER", "").strip().lower()
    if not kind:
        return "mosquitto" if MOSQUITTO or STRICT else "embedded"
    if kind not in KINDS:
        raise pytest.UsageError(f"CHARGERS_TEST_BROKER must be one of {KINDS}, not {kind!r}")
    return kind


class Broker:
    """What every test broker offers.

    - `port`, `url` (the backend's URL, with its login when the broker needs one),
      `backend_login` ((user, password), or (None, None));
    - `start()`, `stop("term"|"kill")`, `restart(sig)`: same port each time;
    - `backend_env()`: environment for a `flask` subprocess (worker, jobs) to reach
      the broker as the backend, with `client_id` as its MQTT client id;
    - `pile_login(pile_id, secret)`: (client id, username, password) of a pile;
    - `kind`, and what differs: `persistent` (queued messages survive a broker
      restart), `acl` (a pile may publish only under its own topics), `mqtt5`."""

    kind = "?"
    persistent = False
    acl = False
    mqtt5 = False

    def __init__(self, client_id: str = "chargers-backend"):
        self.client_id = client_id
        self.port = free_port()

    @property
    def backend_login(self) -> tuple[str | None, str | None]:
        return (None, None)

    @property
    def url(self) -> str:
        user, password = self.backend_login
        auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        return f"mqtt://{auth}127.0.0.1:{self.port}"

    def backend_env(self) -> dict[str, str]:
        return {"MQTT_URL": self.url, "MQTT_CLIENT_ID": self.client_id}

    def pile_login(self, pile_id: str, secret: str | None) -> tuple[str, str, str | None]:
        # The contract: client id == username == pile id, the password its secret.
        return pile_id, pile_id, secret

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, sig: str = "term") -> None:
        raise NotImplementedError

    def restart(self, sig: str = "term") -> None:
        """Stop (SIGTERM or SIGKILL) and start again on the same port."""
        port = self.port
        self.stop(sig)
        self.start()
        assert self.port == port, f"{self.kind} broker came back on {self.port}, not {port}"


class Mosquitto(Broker):
    """A private mosquitto process; restartable on the same port and state
    (`persistence true`, saved every second)."""

    kind = "mosquitto"
    persistent = True
    mqtt5 = True

    def __init__(self, workdir: Path, extra_conf: str = "", client_id: str = "chargers-backend",
                 backend: tuple[str, str] | None = None):
        super().__init__(client_id)
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.extra_conf = extra_conf
        self.acl = "acl_file" in extra_conf
        self._backend = backend
        self.proc: subprocess.Popen | None = None

    @property
    def backend_login(self) -> tuple[str | None, str | None]:
        return self._backend or (None, None)

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


def make_broker(kind: str, workdir: Path, database_url: str, info_file: Path,
                client_id: str = "chargers-backend") -> Broker:
    """An unstarted broker of `kind`; the embedded one checks piles against
    `database_url` and writes its address and backend login to `info_file`."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "mosquitto":
        if not MOSQUITTO:
            pytest.fail("CHARGERS_TEST_BROKER=mosquitto but the mosquitto binary is not installed")
        return Mosquitto(workdir, client_id=client_id)
    from tests.embedded_broker import EmbeddedBroker

    return EmbeddedBroker(workdir, database_url, info_file, client_id=client_id)


@pytest.fixture
def broker(app, tmp_path):
    """The test's own running broker (see `broker_kind`), over the app's database;
    the backend's client id is unique to the test."""
    b = make_broker(broker_kind(), tmp_path / "broker", app.config["SQLALCHEMY_DATABASE_URI"],
                    Path(app.config["EMBEDDED_BROKER_FILE"]), client_id=f"backend-{tmp_path.name}")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def mosquitto(tmp_path):
    """A private, anonymous Mosquitto, for Mosquitto-only tests (it skips where the
    binary is missing; the `broker` fixture falls back to the embedded broker)."""
    skip_unless(MOSQUITTO, "mosquitto binary")
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def pytest_report_header(config) -> str:
    """Say which broker the MQTT tests run on (a bad CHARGERS_TEST_BROKER stops here)."""
    return f"MQTT test broker: {broker_kind()} (CHARGERS_TEST_BROKER=mosquitto|embedded)"
