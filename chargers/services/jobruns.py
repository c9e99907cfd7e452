"""What the worker's jobs did: the last run of each (JobRun), recent runs and
failures (JobRunLog), and which jobs failed last time (for the staff dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..constants import JobRunStatus
from ..extensions import db
from ..models import JobRun, JobRunLog, utcnow


@dataclass
class JobHistory:
    """One job's record: its last run, a few recent runs, failures in the window."""

    job_id: str
    last: JobRun | None
    recent: list[JobRunLog] = field(default_factory=list)
    failures: int = 0
    last_failure: JobRunLog | None = None

    @property
    def duration_s(self) -> float | None:
        """How long the last finished run took."""
        if self.last and self.last.started_at and self.last.finished_at:
            return max(0.0, (self.last.finished_at - self.last.started_at).total_seconds())
        return None


def histories(job_ids: list[str], now: datetime | None = None, *, recent: int = 5,
              failure_days: int = 7) -> dict[str, JobHistory]:
    """The record of every job in `job_ids` (jobs that never ran included)."""
    now = now or utcnow()
    last = {r.job_id: r for r in db.session.scalars(select(JobRun).where(JobRun.job_id.in_(job_ids)))}
    since = now - timedelta(days=failure_days)
    fails = dict(db.session.execute(
        select(JobRunLog.job_id, func.count()).where(JobRunLog.status == JobRunStatus.ERROR,
                                                     JobRunLog.started_at >= since)
        .group_by(JobRunLog.job_id)).all())
    out = {}
    for job_id in job_ids:
        rows = list(db.session.scalars(select(JobRunLog).where(JobRunLog.job_id == job_id)
                                       .order_by(JobRunLog.started_at.desc(), JobRunLog.id.desc())
                                       .limit(recent)))
        failure = None
        if fails.get(job_id):
            failure = db.session.scalar(select(JobRunLog).where(
                JobRunLog.job_id == job_id, JobRunLog.status == JobRunStatus.ERROR)
                .order_by(JobRunLog.started_at.desc()).limit(1))
        out[job_id] = JobHistory(job_id, last.get(job_id), rows, fails.get(job_id, 0), failure)
    return out


def failed_now() -> list[JobRun]:
    """Jobs whose last run failed (the dashboard shows them until a run succeeds)."""
    return list(db.session.scalars(select(JobRun).where(JobRun.status == JobRunStatus.ERROR)
                                   .order_by(JobRun.job_id)))
