"""One worker per deployment: a lease in the database. A second worker stands
by, and takes over when the first stops, dies, or its lease expires."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from chargers.extensions import db
from chargers.models import Lease
from chargers.services import leases
from tests.ingest_support import Worker

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def test_one_holder_until_expiry(app_ctx):
    assert leases.acquire("worker", "hostA:1", T0, 30)
    assert not leases.acquire("worker", "hostB:2", T0 + timedelta(seconds=10), 30)
    assert leases.acquire("worker", "hostA:1", T0 + timedelta(seconds=20), 30)  # renew
    assert not leases.acquire("worker", "hostB:2", T0 + timedelta(seconds=45), 30)
    assert leases.acquire("worker", "hostB:2", T0 + timedelta(seconds=51), 30)  # expired
    assert not leases.acquire("worker", "hostA:1", T0 + timedelta(seconds=52), 30)  # lost
    assert leases.current_holder("worker") == "hostB:2"


def test_release_hands_over_at_once(app_ctx):
    assert leases.acquire("worker", "hostA:1", T0, 30)
    leases.release("worker", "hostA:1")
    assert leases.acquire("worker", "hostB:2", T0 + timedelta(seconds=1), 30)


def test_a_dead_process_on_this_host_is_taken_over_at_once(app_ctx):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{leases.holder_id().rpartition(':')[0]}:{proc.pid}"
    assert leases.acquire("worker", dead, T0, 30)
    assert leases.acquire("worker", leases.holder_id(), T0 + timedelta(seconds=1), 30)
    assert db.session.get(Lease, "worker").holder == leases.holder_id()


def test_second_worker_stands_by_then_takes_over(app, alley_with_pile, broker, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    first = Worker(url, broker, tmp_path / "a")
    second = Worker(url, broker, tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first.start()
    first.wait_log("subscribed to")
    second.start()
    try:
        second.wait_log("standing by")
        assert "subscribed to" not in second.output()
        assert first.stop("term") == 0
        second.wait_log("subscribed to", timeout=30)
    finally:
        first.stop("term")
        assert second.stop("term") in (0, None), second.output()[-2000:]
