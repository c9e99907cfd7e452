"""Jobs of safety: pile configuration sent again until reported, and the risk
review (sessions past their longest time, each card's usual charge)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.devices import config as pile_config
from ..services.safety import cards
from ..services.safety import limits as safety
from . import JobContext, Summary, job


@job("config-push", "interval",
     "Send each pile with the config feature its desired configuration until it reports it",
     seconds=10)
def config_push(now: datetime, ctx: JobContext) -> str | None:
    """Piles that have not reported their desired version get it again."""
    n = pile_config.resend_due(now, settings.limits(current_app.config))
    return Summary(f"config sent again to {n} piles", "config_resent", {"n": n}) if n else None


@job("risk-review", "interval",
     "Stop sessions past the longest time; learn each card's usual charge", minutes=1)
def risk_review(now: datetime, ctx: JobContext) -> str | None:
    """The heavier part of the risk engine, off the ingest path."""
    cfg = current_app.config
    stopped = safety.check_running(now, settings.limits(cfg), settings.alerts(cfg))
    learned = cards.learn_finished(now)
    if stopped or learned:
        return Summary(f"{stopped} stopped too long, {learned} card profiles updated",
                       "risk_reviewed", {"stopped": stopped, "learned": learned})
    return None
