"""Jobs of the ingest: offline sweep, stale sessions, ledger pruning."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import settings
from ..services.billing import messages as session_messages
from ..services.charging import sessions
from ..services.devices import presence
from ..services.ingest import message_log
from . import JobContext, Summary, job


@job("offline-sweep", "interval", "Mark piles offline after 3 missed heartbeats", seconds=30)
def offline_sweep(now: datetime, ctx: JobContext) -> str | None:
    """Piles silent for three heartbeat intervals go offline. (None when nothing
    changed: this runs every 30 s and need not fill the log.)"""
    marked = presence.sweep_offline(now, current_app.config["HEARTBEAT_INTERVAL_S"],
                                    settings.alerts(current_app.config))
    return Summary(f"{len(marked)} piles marked offline: {', '.join(marked[:20])}",
                   "piles_offline", {"n": len(marked)}, marked[:20]) if marked else None


@job("stale-sessions", "interval", "Close sessions silent too long (status timeout)", minutes=5)
def stale_sessions(now: datetime, ctx: JobContext) -> str | None:
    """Sessions with no meter reading for SESSION_STALE_S end at their last reading."""
    paging = settings.paging(current_app.config)
    closed = sessions.close_stale(now, current_app.config["SESSION_STALE_S"],
                                  lambda rows: session_messages.on_sessions(rows, now, paging))
    return Summary(f"{closed} sessions closed by timeout", "sessions_timed_out",
                   {"n": closed}) if closed else None


@job("prune-ledger", "interval", "Forget processed message ids past DEDUP_RETENTION_DAYS", hours=1)
def prune_ledger(now: datetime, ctx: JobContext) -> str | None:
    """Keep the idempotency ledger to its retention window."""
    n = message_log.prune_ledger(now, current_app.config["DEDUP_RETENTION_DAYS"])
    return Summary(f"{n} ledger entries pruned", "ledger_pruned", {"n": n}) if n else None


@job("seq-gaps", "interval", "Seq gaps not filled within SEQ_GAP_WINDOW_S: data_loss alert",
     seconds=15)
def seq_gaps(now: datetime, ctx: JobContext) -> str | None:
    """A pile's missing `seq` numbers that did not arrive late within the window are
    possible data loss (a staff alert)."""
    n = presence.expire_seq_gaps(now, current_app.config["SEQ_GAP_WINDOW_S"],
                                 settings.alerts(current_app.config))
    return Summary(f"{n} seq gaps not filled in time: data_loss", "seq_gaps_lost",
                   {"n": n}) if n else None
