"""Configuration validated at start (issue 20, item 8): every numeric setting's range
is checked when the app is built, and a wrong value stops it with a message naming the
variable (from the environment too: a non-integer)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chargers import create_app
from config import RANGES, Config

from .ingest_support import ROOT


@pytest.mark.parametrize("name,value", [
    ("SETTLE_BATCH_SIZE", 0), ("PROXY_COUNT", -1), ("CLOSE_HOUR", 24), ("HEARTBEAT_INTERVAL_S", 0),
    ("DEDUP_RETENTION_DAYS", 0), ("SMTP_PORT", 70_000), ("RETENTION_BATCH", 0),
    ("MAX_PAYLOAD_BYTES", 10), ("RECONCILE_LOSS_PCT", 101), ("SETTLE_BATCH_SIZE", "40"),
    ("NOTIFY_MAX_ATTEMPTS", True)])
def test_out_of_range_is_refused_naming_the_variable(app_config, name, value):
    app_config[name] = value
    with pytest.raises(RuntimeError, match=name):
        create_app(app_config, config_name="testing")


def test_every_numeric_setting_has_a_range_and_the_defaults_pass():
    numeric = {k for k, v in vars(Config).items()
               if k.isupper() and isinstance(v, int) and not isinstance(v, bool)}
    assert numeric - set(RANGES) == set()
    create_app({"SECRET_KEY": "x"}, config_name="testing")  # the defaults are in range


@pytest.mark.parametrize("name,value", [("CUTOFF_RETRY_BASE_S", 120),
                                        ("LOGIN_RATE_LIMIT", "ten a minute")])
def test_orders_and_rate_limits(app_config, name, value):
    app_config[name] = value
    with pytest.raises(RuntimeError, match=name):
        create_app(app_config, config_name="testing")


def test_a_non_integer_in_the_environment_names_the_variable():
    env = {**os.environ, "SETTLE_BATCH_SIZE": "lots", "MQTT_URL": ""}
    r = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SETTLE_BATCH_SIZE" in r.stderr
    env["SETTLE_BATCH_SIZE"] = "0"
    r = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SETTLE_BATCH_SIZE=0 is out of range" in r.stderr
