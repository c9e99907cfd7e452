"""Work that runs on a clock. Each job is a module-level function
`func(now: datetime, ctx: JobContext) -> str | None` registered with @job; the
worker's scheduler runs every registered job, and `flask jobs run ID` runs one now.

Jobs only translate the clock into service calls; the rules live in services/.
The returned string is a one-line summary for the log and `jobs list`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
        return self.interval is not None and self.interval < timedelta(minutes=1)

    @property
    def interval(self) -> timedelta | None:
        """An interval job's period (None for a cron job)."""
        if self.trigger != "interval":
            return None
        return timedelta(**{k: v for k, v in self.trigger_args.items()
                            if k in ("weeks", "days", "hours", "minutes", "seconds")})

    def schedule(self) -> str:
        """A short text of the schedule, e.g. `interval seconds=30` or `cron hour=3`."""
        args = ", ".join(f"{k}={v}" for k, v in self.trigger_args.items())
        return f"{self.trigger} {args}".strip()

    def next_run_after(self, last_started: datetime | None, now: datetime) -> datetime:
        """When the running worker will next fire the job, from the catalogue alone (the
        web reads this without APScheduler; tests/test_jobs_catalogue.py holds it to
        APScheduler's own answer): an interval job one period after its last start (or
        after `now`, never started), a cron job at its next minute (and hour) in UTC. A
        time in the past means the worker is not running it."""
        if self.interval is not None:
            return (last_started or now) + self.interval
        args = self.trigger_args
        at = now.astimezone(UTC).replace(second=0, microsecond=0, minute=int(args.get("minute", 0)))
        if "hour" in args:
            at = at.replace(hour=int(args["hour"]))
            return at if at >= now else at + timedelta(days=1)
        return at if at >= now else at + timedelta(hours=1)


class Summary(str):
    """A job's summary: the English line for the log and `jobs list` (the string
    itself), carrying what happened as a code and counts (name → number) for the
    jobs page to put in words (chargers/labels.py JOB_RESULT_LABELS), and `items`
    (names of what it touched: piles, months) shown as they are."""

    code: str
    counts: dict
    items: list

    def __new__(cls, text: str, code: str, counts: dict | None = None,
                items: list | None = None):
        s = super().__new__(cls, text)
        s.code, s.counts, s.items = code, dict(counts or {}), list(items or [])
        return s

    def stored(self) -> str:
        """What JobRun keeps: JSON with the code, counts, items and the English line."""
        import json

        return json.dumps({"code": self.code, "counts": self.counts, "items": self.items,
                           "text": str(self)}, ensure_ascii=False)


def stored_summary(summary: str | None) -> str | None:
    return summary.stored() if isinstance(summary, Summary) else summary


def read_summary(stored: str | None) -> dict | None:
    """A stored summary back as {"code", "counts", "items", "text"}; a plain line (an
    error's, or one kept before summaries had codes) as {"text": …}."""
    import json

    if not stored:
        return None
    if stored.startswith("{"):
        try:
            data = json.loads(stored)
        except ValueError:
            return {"text": stored}
        if isinstance(data, dict) and "code" in data:
            return data
    return {"text": stored}


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
    from . import (  # noqa: F401
        alerts,
        billing,
        budget,
        ingest,
        maintenance,
        payments,
        reminders,
        safety,
        statements,
    )

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

    from ..constants import JobRunStatus
    from ..extensions import db
    from ..models import JobRun, JobRunLog, utcnow

    log = logging.getLogger("chargers.jobs")
    with app.app_context():
        started = utcnow()
        now = now or started
        _record(db, JobRun, job.id, started=started, status=JobRunStatus.RUNNING)
        try:
            summary = job.func(now, ctx or NoPublish())
        except Exception as exc:
            db.session.rollback()
            log.exception("job %s failed", job.id)
            summary = f"{type(exc).__name__}: {exc}"[:500]
            _record(db, JobRun, job.id, finished=utcnow(), status=JobRunStatus.ERROR,
                    summary=summary)
            _history(db, JobRunLog, job, started, "error", summary)
            raise
        kept = stored_summary(summary)
        _record(db, JobRun, job.id, finished=utcnow(), status=JobRunStatus.OK, summary=kept)
        if summary or not job.frequent:
            _history(db, JobRunLog, job, started, "ok", kept)
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
