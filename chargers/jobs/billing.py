"""Jobs of billing: settlement every minute, the balance guard."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.billing import balance_guard as guard
from ..services.billing import settlement
from . import JobContext, Summary, job


@job("settle", "interval", "Price finished sessions and post each to the ledger once",
     minutes=1)
def settle(now: datetime, ctx: JobContext) -> str | None:
    """Every finished, unbilled session: priced and posted exactly once."""
    counts = settlement.settle(now, settings.settle(current_app.config))
    if counts:
        return Summary(", ".join(f"{n} {k}" for k, n in sorted(counts.items())), "settled",
                       dict(sorted(counts.items())))
    return None


@job("balance-guard", "interval",
     "Stop sessions past their balance or monthly hours, or on unknown cards after a grace",
     seconds=10)
def balance_guard(now: datetime, ctx: JobContext) -> str | None:
    """Running sessions that must stop get `stop` through the command service."""
    counts = guard.check(now, settings.guard(current_app.config))
    if counts:
        return Summary("stop asked: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
                       "stop_asked", dict(sorted(counts.items())))
    return None
