"""Leases: one holder at a time for a named role (the worker), renewed while it
lives, taken over when it expires — or at once when its holder was a process on this
machine that no longer exists (a killed worker restarted on the same host).

`acquire` and `release` commit (each is its own short transaction); the rest read."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Lease


def holder_id() -> str:
    """This process: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(holder: str) -> bool:
    """True when `holder` was a process on this host that is not running any more."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(name: str, holder: str, now: datetime, ttl_s: float) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl. False when another
    live holder has it. Commits."""
    expires = now + timedelta(seconds=ttl_s)
    row = db.session.get(Lease, name)
    if row is None:
        db.session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=expires))
        try:
            db.session.commit()
            return True
        except IntegrityError:  # another process inserted it first
            db.session.rollback()
            return False
    current = row.holder
    takeable = or_(Lease.holder == holder, Lease.expires_at < now)
    if current != holder and _gone(current):
        takeable = or_(takeable, Lease.holder == current)
    # One conditional UPDATE: of two processes racing, only one matches the row.
    values = {"holder": holder, "expires_at": expires}
    if current != holder:
        values["acquired_at"] = now
    result = db.session.execute(
        update(Lease).where(Lease.name == name, takeable).values(**values)
        .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.expire_all()
    return result.rowcount == 1


def release(name: str, holder: str) -> None:
    """Give the lease up (a clean stop), so a standby takes over at once. Commits."""
    db.session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        .execution_options(synchronize_session=False))
    db.session.commit()


def current_holder(name: str) -> str | None:
    """Who holds `name` now (expired or not), for logs."""
    row = db.session.get(Lease, name)
    return row.holder if row else None
