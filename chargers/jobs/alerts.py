"""Jobs of alerts, commands and notifications: each translates the clock
into one service call and returns a one-line summary."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.alerts import cutoff, notify
from ..services.alerts import lifecycle as alerts
from ..services.devices import commands
from . import JobContext, Summary, job


@job("commands-dispatch", "interval", "Publish pending commands on the piles' cmd topics",
     seconds=1)
def dispatch_commands(now: datetime, ctx: JobContext) -> str | None:
    """Send what staff or the automatic cut-off asked for."""
    n = commands.dispatch_pending(ctx.publish, now, settings.commands(current_app.config))
    return Summary(f"{n} command(s) sent", "commands_sent", {"n": n}) if n else None


@job("commands-timeout", "interval", "Mark commands with no ack in 30 s as timed out",
     seconds=5)
def expire_commands(now: datetime, ctx: JobContext) -> str | None:
    """No answer from the pile: the command failed."""
    n = commands.expire(now, settings.commands(current_app.config))
    return Summary(f"{n} command(s) timed out", "commands_timed_out", {"n": n}) if n else None


@job("cutoff-track", "interval",
     "Confirm cut-offs the piles carried out, send again what they did not, escalate late ones",
     seconds=1)
def track_cutoffs(now: datetime, ctx: JobContext) -> str | None:
    """A cut-off is done only when the pile confirms it."""
    confirmed, escalated, resent = cutoff.track(now, settings.alerts(current_app.config))
    if confirmed or escalated or resent:
        return Summary(f"{confirmed} confirmed, {escalated} not confirmed in time, {resent} sent again",
                       "cutoffs", {"confirmed": confirmed, "escalated": escalated,
                                   "resent": resent})
    return None


@job("alerts-offline", "interval", "Raise an alert for piles offline past the grace period",
     seconds=30)
def offline_alerts(now: datetime, ctx: JobContext) -> str | None:
    """Offline as an alert, after OFFLINE_GRACE_S."""
    n = alerts.raise_offline_alerts(now, settings.alerts(current_app.config))
    return Summary(f"{n} offline alert(s) raised", "offline_alerts", {"n": n}) if n else None


@job("alerts-notify", "interval", "Page contacts of alerts open past the debounce",
     seconds=10)
def notify_new_alerts(now: datetime, ctx: JobContext) -> str | None:
    """Non-critical alerts page once they outlast the flap debounce."""
    n = alerts.notify_debounced(now, settings.alerts(current_app.config))
    return Summary(f"{n} alert(s) paged", "alerts_paged", {"n": n}) if n else None


@job("alerts-escalate", "interval",
     "Re-send unacknowledged critical alerts and escalate to level-2 contacts", seconds=60)
def page_unacknowledged(now: datetime, ctx: JobContext) -> str | None:
    """Nobody answered: say it again, then tell the next person."""
    resent, escalated = alerts.page_unacknowledged(now, settings.alerts(current_app.config))
    if resent or escalated:
        return Summary(f"{resent} re-sent, {escalated} escalated", "alerts_repaged",
                       {"resent": resent, "escalated": escalated})
    return None


@job("notify-deliver", "interval", "Deliver the notification outbox (webhook, e-mail)",
     seconds=5)
def deliver_notifications(now: datetime, ctx: JobContext) -> str | None:
    """Send due messages; failures wait with exponential backoff."""
    sent, failed = notify.deliver_due(now, settings.delivery(current_app.config))
    if sent or failed:
        return Summary(f"{sent} sent, {failed} failed", "delivered", {"sent": sent, "failed": failed})
    return None
