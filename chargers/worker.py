"""`flask --app wsgi worker`: the MQTT ingest and the scheduled jobs in one
process, run once per deployment. Exits cleanly on SIGTERM/SIGINT: the batch in
hand is finished and acknowledged, the rest stays with the broker."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from .ingest.client import IngestClient
from .scheduler import build_scheduler
from .services import commands

log = logging.getLogger(__name__)


DISPATCH_JOB = "commands-dispatch"


def _dispatch_waker(scheduler: BaseScheduler):
    """A hook for the ingest: when a committed batch created commands (a fire
    cut-off), run the dispatch job now rather than at its next tick."""
    created = threading.Event()

    def on_created(_sender, **_kwargs):
        created.set()

    commands.command_created.connect(on_created, weak=False)

    def after_commit() -> None:
        if created.is_set():
            created.clear()
            try:
                scheduler.modify_job(DISPATCH_JOB, next_run_time=datetime.now(UTC))
            except JobLookupError:
                pass

    return after_commit


def run(app: Flask) -> None:
    """Run until SIGTERM or SIGINT."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("got %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ingest = IngestClient(app)
    # The embedded broker may not have written its address yet; a signal must
    # still be able to stop us while we wait.
    waiter = threading.Thread(target=lambda: (stop.wait(), ingest.stopping.set()), daemon=True)
    waiter.start()
    if not ingest.start():
        log.info("stopped before the broker appeared")
        return
    scheduler = build_scheduler(app, ingest)
    ingest.after_commit = _dispatch_waker(scheduler)
    scheduler.start()
    log.info("worker running: %d jobs scheduled", len(scheduler.get_jobs()))
    try:
        while not stop.wait(1):
            pass
    finally:
        scheduler.shutdown(wait=True)
        ingest.stop()
        log.info("worker stopped")
