"""Is the system well? The database answers a query; the broker accepts a TCP
connection. Used by GET /healthz, which passes the broker's address in (None when
the embedded broker has not written its file)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text

from ..extensions import db
from ..models import Lease, utcnow
from ..mqtt_settings import BrokerAddress


@dataclass
class HealthReport:
    checks: dict[str, str] = field(default_factory=dict)
    # Facts shown but not judged: the contract's 200/503 is about database and broker.
    info: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v == "ok" for v in self.checks.values())

    def as_dict(self) -> dict:
        failing = [k for k, v in self.checks.items() if v != "ok"]
        return {"status": "ok" if self.ok else "fail", "checks": self.checks, "failing": failing,
                **self.info}


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver error means "does not answer"
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def _broker(address: BrokerAddress | None) -> str:
    if address is None:
        return "error: embedded broker not started"
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            return "ok"
    except OSError as exc:
        return f"error: {exc.strerror or type(exc).__name__} at {address.host}:{address.port}"


def _worker(now: datetime) -> str:
    """Whether a worker holds its lease now (it renews every 10 s while it runs)."""
    try:
        lease = db.session.get(Lease, "worker")
    except Exception:
        db.session.rollback()
        return "unknown"
    if lease is None or lease.expires_at < now:
        return "not running"
    return f"running ({lease.holder})"


def check(broker: BrokerAddress | None, now: datetime | None = None) -> HealthReport:
    """Run every check; `broker` is where the MQTT broker should answer."""
    report = HealthReport({"database": _database(), "mqtt": _broker(broker)})
    report.info["worker"] = _worker(now or utcnow())
    return report
