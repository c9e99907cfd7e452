"""The embedded broker (`flask --app wsgi broker`) as a subprocess for tests, over
a given database: `EmbeddedBroker` (the `Broker` interface of tests/brokers.py)
and the `embedded_broker` context manager."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.brokers import Broker
from tests.device_clients import wait_until

ROOT = Path(__file__).resolve().parent.parent


class EmbeddedBroker(Broker):
    """The embedded broker as a subprocess. It refuses anonymous logins, checks
    piles against the database, enforces the ACL, speaks MQTT 3.1.1 only and keeps
    sessions in memory (a restart loses what was queued). Each start generates a
    new backend password: `url` and `backend_login` give the current one; a worker
    given `backend_env()` reads the broker file instead, as under `make run`."""

    kind = "embedded"
    persistent = False
    acl = True
    mqtt5 = False

    def __init__(self, workdir: Path, database_url: str, info_file: Path,
                 client_id: str = "chargers-backend"):
        super().__init__(client_id)
        self.workdir = workdir
        self.database_url = database_url
        self.file = info_file
        self.log = workdir / "broker.log"
        self.info: dict = {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def backend_login(self) -> tuple[str | None, str | None]:
        return self.info.get("username"), self.info.get("password")

    def backend_env(self) -> dict[str, str]:
        return {"MQTT_URL": "", "EMBEDDED_BROKER_FILE": str(self.file),
                "MQTT_CLIENT_ID": self.client_id}

    def start(self) -> None:
        """Start on `port` (the broker takes another free one if it is gone: then
        `port` follows) and wait for its file."""
        self.starts += 1
        # The broker removes a stale file itself; removing it here too means the
        # wait below sees this run's file, not the last one's.
        self.file.unlink(missing_ok=True)
        env = {**os.environ, "DATABASE_URL": self.database_url, "EMBEDDED_BROKER_FILE": str(self.file),
               "MQTT_URL": "", "CHARGERS_ENV": "development", "MQTT_CLIENT_ID": self.client_id}
        with open(self.log, "a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "broker", "--kind", "embedded",
                 "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        wait_until(lambda: self.file.exists() or proc.poll() is not None, 30, "the broker file")
        assert proc.poll() is None, self.log.read_text()
        self.info = json.loads(self.file.read_text())
        self.port = int(self.info["port"])

    def stop(self, sig: str = "term") -> None:
        """SIGTERM (clean: the file is removed) or SIGKILL (the file stays, stale)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if sig == "kill" else signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None


@contextlib.contextmanager
def embedded_broker(database_url: str, info_file: Path, log_path: Path):
    """Run the broker until the block ends; yields {"host", "port", "username",
    "password", "proc", "file"} (username/password: the backend's login)."""
    workdir = log_path.parent / f"{log_path.stem}-embedded"
    workdir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(workdir, database_url, info_file)
    broker.log = log_path
    broker.start()
    try:
        yield {**broker.info, "proc": broker.proc, "file": info_file}
    finally:
        broker.stop()
