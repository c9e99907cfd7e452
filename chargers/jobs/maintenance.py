"""Jobs of maintenance and housekeeping: inspection reminders, the fault rule,
overstays and retention. Each builds its settings from config and makes one
service call."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services import retention
from ..services.maintenance import inspections, overstay
from . import JobContext, Summary, job


# Every hour on the hour (UTC), and once at worker start (as every job): the service looks at each
# alley in its own zone and reminds from INSPECTION_REMIND_HOUR (08:00) local time,
# once per plan, due date and stage, so any zone (and a worker that was down at 08:00)
# is served by the same hourly tick.
@job("inspections-due", "cron", "Remind contacts of inspections due or overdue (08:00 alley time)", minute=0)
def inspections_due(now: datetime, ctx: JobContext) -> str | None:
    """Due, overdue and escalation reminders through the notification outbox."""
    sent = inspections.send_reminders(settings.maintenance(current_app.config),
                                      now)
    messages = sent.pop("messages")
    if any(sent.values()):
        stages = ", ".join(f"{n} {stage}" for stage, n in sent.items() if n)
        return Summary(f"{stages}; {messages} message(s) queued", "inspection_reminders",
                       {**{k: n for k, n in sent.items() if n}, "messages": messages})
    return None


@job("fault-inspections", "interval",
     "Open one unscheduled inspection for piles with repeated faults or high temperatures",
     minutes=10)
def fault_inspections(now: datetime, ctx: JobContext) -> str | None:
    """The fault rule, from the FaultEvent and MeterSample rows of the window."""
    n = inspections.open_fault_inspections(
        settings.maintenance(current_app.config), now)
    return Summary(f"{n} inspection order(s) opened", "inspection_orders",
                   {"n": n}) if n else None


@job("overstay", "interval",
     "Notice finished ports still plugged in and nudge the card holder", minutes=1)
def overstays(now: datetime, ctx: JobContext) -> str | None:
    """Open and close Overstay rows for the residents' page; nudge card holders."""
    opened, closed, nudged = overstay.scan(settings.overstay(current_app.config), now)
    out = f"{opened} overstay(s) noticed, {closed} ended" if opened or closed else ""
    if nudged:
        out = (out + ", " if out else "") + f"{nudged} card holder(s) nudged"
    return Summary(out, "overstays", {"opened": opened, "ended": closed,
                                      "nudged": nudged}) if out else None


# 19:30 UTC is 03:30 in China, the quietest hour; also once at worker start.
@job("retention", "cron", "Delete old meter samples, delivered notifications, rejections, job runs",
     hour=19, minute=30)
def purge_old_rows(now: datetime, ctx: JobContext) -> str | None:
    """Housekeeping in small batches."""
    out = retention.purge(settings.retention(current_app.config), now)
    return Summary(", ".join(f"{n} {name}" for name, n in out.items()) + " deleted",
                   "deleted", out)
