"""Jobs of the alley's power budget: the queue's `start`s when headroom appears, and
the feeder check (a point of the load curve; the over-limit stop)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.budget import overload
from ..services.budget import queue as budget_queue
from . import JobContext, Summary, job


def _language() -> str:
    return (current_app.config.get("LANGUAGES") or ("zh",))[0]


@job("budget-queue", "interval",
     "Start the first queued residents when the alley's power budget has room; drop those "
     "whose bike left", seconds=5)
def budget_queue_dispatch(now: datetime, ctx: JobContext) -> str | None:
    """First come, first served, per alley (services/budget/queue.py)."""
    out = budget_queue.dispatch_all(now, settings.budget(current_app.config), _language())
    if not out.get("started") and not out.get("dropped"):
        return None
    return Summary(f"{out.get('started', 0)} queued session(s) started, "
                   f"{out.get('dropped', 0)} dropped", "queue_started",
                   {"started": out.get("started", 0), "dropped": out.get("dropped", 0)})


@job("budget-check", "interval",
     "Sample each alley's charging load; stop the newest sessions when it stays over the "
     "feeder limit", seconds=10)
def budget_check(now: datetime, ctx: JobContext) -> str | None:
    """The feeder's load curve and the over-limit stop (services/budget/overload.py)."""
    cfg = current_app.config
    out = overload.check(now, settings.budget(cfg), settings.alerts(cfg), _language())
    if not out["stop_asked"]:
        return None
    return Summary(f"{out['stop_asked']} session(s) stopped over the feeder limit",
                   "over_budget_stops", {"n": out["stop_asked"]})
