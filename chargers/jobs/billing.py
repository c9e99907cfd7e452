"""Jobs of billing: settlement every minute, the balance guard."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from ..services import settlement
from . import JobContext, job


def settle_rule() -> settlement.SettleRule:
    """Settlement settings from config."""
    return settlement.SettleRule(batch_size=current_app.config["SETTLE_BATCH_SIZE"])


@job("settle", "interval", "Price finished sessions and post each to the ledger once",
     minutes=1)
def settle(now: datetime, ctx: JobContext) -> str | None:
    """Every finished, unbilled session: priced and posted exactly once."""
    counts = settlement.settle(now, settle_rule())
    if counts:
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return None
