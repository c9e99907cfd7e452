"""The worker's clock: an APScheduler 3.x BackgroundScheduler running every job of
chargers.jobs, each run in its own app context and recorded in JobRun.

Built only by the worker (never in create_app): one scheduler per deployment.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from .jobs import Job, JobContext, all_jobs, run_job

log = logging.getLogger(__name__)
# A run delayed by a busy machine or a pause is still worth doing; coalesce=True
# makes several missed runs one.
MISFIRE_GRACE_S = 3600


def make_trigger(job: Job):
    """The APScheduler trigger of a job (UTC unless the job names a timezone)."""
    args = dict(job.trigger_args)
    args.setdefault("timezone", UTC)
    if job.trigger == "interval":
        return IntervalTrigger(**args)
    if job.trigger == "cron":
        return CronTrigger(**args)
    raise ValueError(f"job {job.id}: unknown trigger {job.trigger!r}")


def build_scheduler(app: Flask, ctx: JobContext, jobs: dict[str, Job] | None = None) -> BackgroundScheduler:
    """A scheduler (not started) with every job."""
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_S, "max_instances": 1},
    )
    for job in (jobs or all_jobs()).values():
        extra = {"next_run_time": datetime.now(UTC)} if job.run_at_start else {}
        scheduler.add_job(_run_scheduled, make_trigger(job), args=(app, job, ctx), id=job.id,
                          name=job.description or job.id, replace_existing=True, **extra)
    return scheduler


def _run_scheduled(app: Flask, job: Job, ctx: JobContext) -> None:
    try:
        run_job(app, job, None, ctx)
    except Exception:
        pass  # already logged and recorded by run_job; the next run goes on
