"""Residents' reminders (low or negative balance, monthly card ending, statement
ready) and alley-wide notices of published months, each once, into the outbox."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.billing import reminders
from . import JobContext, Summary, job


@job("reminders", "interval", "Remind residents once per condition; notice published months",
     minutes=10)
def remind(now: datetime, ctx: JobContext) -> str | None:
    counts = reminders.run(now, settings.reminders(current_app.config))
    if counts:
        return Summary(", ".join(f"{n} {k}" for k, n in sorted(counts.items())), "reminders",
                       dict(sorted(counts.items())))
    return None
