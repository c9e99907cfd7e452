"""Bookkeeping of the worker: when each scheduled job last ran, and which worker
process holds the lease to run at all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime


class JobRun(db.Model):
    """The last run of one job (one row per job id)."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="never")  # ok / error / running
    summary: Mapped[str | None] = mapped_column(Text)


class JobRunLog(db.Model):
    """History of runs: every failure, and every run that did something or belongs
    to a job that runs less often than once a minute (the busy per-second jobs' idle
    ticks are not kept). Trimmed by the `retention` job."""

    __tablename__ = "job_run_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16))  # ok / error
    summary: Mapped[str | None] = mapped_column(Text)


class Lease(db.Model):
    """A named lease held by one process until `expires_at` (renewed while alive):
    one worker per deployment, even when a second one is started by mistake."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))  # "host:pid"
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
