"""Work that runs on a clock. Each job is a module-level function
`func(now: datetime, ctx: JobContext) -> str | None` registered with @job; the
worker's scheduler runs every registered job, and `flask jobs run ID` runs one now.

Jobs only translate the clock into service calls; the rules live in services/.
The returned string is a one-line summary for the log and `jobs list`.
"""

from __future__ import annotations

import importlib
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


REGISTRY: dict[str, Job] = {}
# Modules that define jobs; each registers its functions on import.
JOB_MODULES = ("chargers.jobs.ingest", "chargers.jobs.alerts")


def job(job_id: str, trigger: str, description: str, **trigger_args):
    """Register a job function under `job_id` with an APScheduler trigger."""

    def register(func):
        REGISTRY[job_id] = Job(job_id, func, trigger, trigger_args, description)
        return func

    return register


def all_jobs() -> dict[str, Job]:
    """Every registered job, by id."""
    for name in JOB_MODULES:
        importlib.import_module(name)
    return REGISTRY
