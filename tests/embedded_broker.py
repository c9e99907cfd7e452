"""The embedded broker (`flask --app wsgi broker`) as a subprocess for tests, over
a given database; the stand-in where the Mosquitto binary is missing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.brokers import free_port
from tests.device_clients import wait_until

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def embedded_broker(database_url: str, info_file: Path, log_path: Path):
    """Run the broker until the block ends; yields {"host", "port", "username",
    "password", "proc", "file"} (username/password: the backend's login)."""
    env = {**os.environ, "DATABASE_URL": database_url, "EMBEDDED_BROKER_FILE": str(info_file),
           "MQTT_URL": "", "CHARGERS_ENV": "development"}
    with open(log_path, "w") as log:
        # A port that is free now: the suite must not depend on 1883.
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "broker", "--port",
                                 str(free_port())], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: info_file.exists() or proc.poll() is not None, 30, "the broker file")
            assert proc.poll() is None, log_path.read_text()
            yield {**json.loads(info_file.read_text()), "proc": proc, "file": info_file}
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
