"""Work that runs on a clock. Each job is a module-level function
`func(now: datetime, ctx: JobContext) -> str | None` registered with @job; the
worker's scheduler runs every registered job, and `flask jobs run ID` runs one now.

Jobs only translate the clock into service calls; the rules live in services/.
The returned string is a one-line summary for the log and `jobs list`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class JobContext(Protocol):
    """What a job may use besides the database: publishing to the broker."""

    def publish(self, topic: str, payload: dict) -> None: ...


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[datetime, JobContext], str | None]
    trigger: str  # "interval" or "cron" (APScheduler trigger names)
    trigger_args: dict = field(default_factory=dict)
    description: str = ""
    # Also run once when the worker starts: a job that runs rarely (hourly, daily)
    # would otherwise wait a whole period after every restart, and miss its hour when
    # the worker was down then. Every job is idempotent; pass False to opt out.
    run_at_start: bool = True

    @property
    def frequent(self) -> bool:
        """Runs more often than once a minute: its idle runs are not kept in history."""
        if self.trigger != "interval":
            return False
        from datetime import timedelta

        args = {k: v for k, v in self.trigger_args.items()
                if k in ("weeks", "days", "hours", "minutes", "seconds")}
        return timedelta(**args) < timedelta(minutes=1)


REGISTRY: dict[str, Job] = {}


def job(job_id: str, trigger: str, description: str, *, run_at_start: bool = True,
        **trigger_args):
    """Register a job function under `job_id` with an APScheduler trigger."""

    def register(func):
        REGISTRY[job_id] = Job(job_id, func, trigger, trigger_args, description, run_at_start)
        return func

    return register


def all_jobs() -> dict[str, Job]:
    """Every registered job, by id."""
    # The modules that define jobs register them on import (imported here, not at the
    # top, because they import `job` from this module).
    from . import alerts, billing, ingest, maintenance, reminders, safety, statements  # noqa: F401

    return REGISTRY


class NoPublish:
    """ctx for a run with no broker at hand: publishing is an error."""

    def publish(self, topic: str, payload: dict) -> None:
        raise RuntimeError(f"no broker connection to publish to {topic}")


def run_job(app, job: Job, now: datetime | None = None, ctx: JobContext | None = None) -> str | None:
    """Run `job` once in its own app context and record it in JobRun.

    Exceptions are logged and recorded (status `error`) and then re-raised, so the
    scheduler logs them too and `flask jobs run` exits non-zero.
    """
    import logging

    from ..extensions import db
    from ..models import JobRun, JobRunLog, utcnow

    log = logging.getLogger("chargers.jobs")
    with app.app_context():
        started = utcnow()
        now = now or started
        _record(db, JobRun, job.id, started=started, status="running")
        try:
            summary = job.func(now, ctx or NoPublish())
        except Exception as exc:
            db.session.rollback()
            log.exception("job %s failed", job.id)
            summary = f"{type(exc).__name__}: {exc}"[:500]
            _record(db, JobRun, job.id, finished=utcnow(), status="error", summary=summary)
            _history(db, JobRunLog, job, started, "error", summary)
            raise
        _record(db, JobRun, job.id, finished=utcnow(), status="ok", summary=summary)
        if summary or not job.frequent:
            _history(db, JobRunLog, job, started, "ok", summary)
        # Frequent jobs with nothing to say stay out of the log.
        log.log(logging.INFO if summary else logging.DEBUG, "job %s: %s", job.id, summary or "done")
        return summary


def _record(db, JobRun, job_id: str, *, started=None, finished=None, status: str,
            summary: str | None = None) -> None:
    row = db.session.get(JobRun, job_id) or JobRun(job_id=job_id)
    db.session.add(row)
    if started is not None:
        row.started_at, row.finished_at, row.summary = started, None, None
    if finished is not None:
        row.finished_at, row.summary = finished, summary
    row.status = status
    db.session.commit()


def _history(db, JobRunLog, job: Job, started, status: str, summary: str | None) -> None:
    """One row of the jobs page's history (trimmed by the `retention` job)."""
    from ..models import utcnow

    finished = utcnow()
    db.session.add(JobRunLog(job_id=job.id, started_at=started, finished_at=finished,
                             duration_s=(finished - started).total_seconds(), status=status,
                             summary=summary))
    db.session.commit()
