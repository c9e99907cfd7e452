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
from .models import utcnow
from .scheduler import build_scheduler
from .services import commands, leases

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


LEASE = "worker"
LEASE_TTL_S = 30  # a standby takes over this long after a holder on another host dies
LEASE_RENEW_S = 10


def _hold_lease(app: Flask, holder: str, stop: threading.Event) -> bool:
    """Wait until this process holds the worker lease (True), or is told to stop.
    A second worker started by mistake stands by instead of fighting the first over
    the MQTT client id and running every job twice."""
    said = False
    while True:
        with app.app_context():
            if leases.acquire(LEASE, holder, utcnow(), LEASE_TTL_S):
                return True
            other = leases.current_holder(LEASE)
        if not said:
            log.warning("another worker (%s) holds the lease; standing by", other)
            said = True
        if stop.wait(LEASE_RENEW_S / 2):
            return False


def _renew_lease(app: Flask, holder: str) -> bool:
    """Renew the lease; False when it was lost (another worker has it). A database
    that does not answer is not a loss: the lease is still ours until it expires."""
    try:
        with app.app_context():
            return leases.acquire(LEASE, holder, utcnow(), LEASE_TTL_S)
    except Exception:
        log.exception("could not renew the worker lease")
        return True


def run(app: Flask) -> int:
    """Run until SIGTERM or SIGINT; returns the exit status (1: lost the lease)."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("got %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    holder = leases.holder_id()
    if not _hold_lease(app, holder, stop):
        log.info("stopped while standing by")
        return 0
    log.info("holding the worker lease as %s", holder)
    ingest = IngestClient(app)
    # The embedded broker may not have written its address yet; a signal must
    # still be able to stop us while we wait.
    waiter = threading.Thread(target=lambda: (stop.wait(), ingest.stopping.set()), daemon=True)
    waiter.start()
    status = 0
    try:
        if not ingest.start():
            log.info("stopped before the broker appeared")
            return 0
        scheduler = build_scheduler(app, ingest)
        ingest.after_commit = _dispatch_waker(scheduler)
        scheduler.start()
        log.info("worker running: %d jobs scheduled", len(scheduler.get_jobs()))
        try:
            while not stop.wait(LEASE_RENEW_S):
                if not _renew_lease(app, holder):
                    log.error("lost the worker lease to another worker; stopping")
                    status = 1
                    break
        finally:
            scheduler.shutdown(wait=True)
            ingest.stop()
    finally:
        if status == 0:
            try:
                with app.app_context():
                    leases.release(LEASE, holder)
            except Exception:  # it expires by itself
                log.exception("could not release the worker lease")
        log.info("worker stopped")
    return status
