"""Housekeeping (job `retention`): meter samples, delivered notifications, device
message rejections and job-run history older than their configured ages are deleted.

In small batches, each its own short transaction, oldest id first: rows are written
in time order, so the oldest ids are the oldest rows and the primary key is the only
index needed. A batch that reaches a row younger than the cut-off ends that table's
round (a few late-written old rows wait for tomorrow), so no statement scans or locks
much of a table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..extensions import db
from ..models import FeederSample, JobRunLog, MeterSample, Notification, Rejection, utcnow
from ..settings import RetentionRule


def _purge(model, time_col, cutoff: datetime, batch: int, extra=None,
           max_batches: int = 10_000) -> int:
    deleted = 0
    for _ in range(max_batches):
        stmt = select(model.id, time_col).order_by(model.id).limit(batch)
        if extra is not None:
            stmt = stmt.where(extra)
        rows = db.session.execute(stmt).all()
        old = [r[0] for r in rows if r[1] is not None and r[1] < cutoff]
        if old:
            db.session.execute(delete(model).where(model.id.in_(old)))
        db.session.commit()
        deleted += len(old)
        if len(rows) < batch or len(old) < len(rows):
            break
    return deleted


def purge(rule: RetentionRule, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than the rule's ages; returns rows deleted per kind.
    Commits (once per batch)."""
    now = now or utcnow()
    out = {}
    plan = [
        ("meter_samples", MeterSample, MeterSample.received_at, rule.meter_days, None),
        # The feeder's load curve is readings too (kept as long; the peak looks 30 days back).
        ("feeder_samples", FeederSample, FeederSample.at, rule.meter_days, None),
        ("notifications", Notification, Notification.sent_at, rule.notification_days,
         Notification.status == "sent"),
        ("rejections", Rejection, Rejection.received_at, rule.rejection_days, None),
        ("job_runs", JobRunLog, JobRunLog.started_at, rule.job_run_days, None),
    ]
    for name, model, col, days, extra in plan:
        if days <= 0:
            out[name] = 0
            continue
        out[name] = _purge(model, col, now - timedelta(days=days), rule.batch, extra)
    return out
