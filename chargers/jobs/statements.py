"""Jobs of the monthly close: `statements-monthly` closes every past month not yet
closed, per alley in its own zone (from 02:00 local on the 1st)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.billing import monthly_close
from . import JobContext, Summary, job


@job("statements-monthly", "cron",
     "Close every past month not yet closed: statements and each alley's month account",
     minute=5)
def statements_monthly(now: datetime, ctx: JobContext) -> str | None:
    """Hourly check; the service closes a month only from 02:00 alley time on the 1st."""
    r = monthly_close.close_due(now, settings.close(current_app.config))
    parts = []
    if r.closed:
        parts.append("closed " + ", ".join(r.closed))
    if r.waiting:
        parts.append("waiting for settlement " + ", ".join(r.waiting))
    if not parts:
        return None
    return Summary("; ".join(parts), "months_closed",
                   {"closed": len(r.closed), "waiting": len(r.waiting)}, r.closed + r.waiting)
