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

from . import settings
from .heap import freeze_startup_heap
from .ingest.client import IngestClient
from .models import utcnow
from .scheduler import build_scheduler
from .services import leases
from .services.devices import commands

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


def worker_identity(config, name: str | None = None) -> tuple[str, str | None]:
    """(MQTT client id, share group) of this worker. With WORKER_NAME (or --name)
    one of several: client id MQTT_CLIENT_ID-<name>, and the device topics through
    the shared subscription of MQTT_SHARE_GROUP. Without, the one worker of old:
    MQTT_CLIENT_ID, a plain subscription, everything under the lease."""
    name = (name if name is not None else config.get("WORKER_NAME", "")).strip()
    base = config["MQTT_CLIENT_ID"]
    if not name:
        return base, None
    return f"{base}-{name}", config.get("MQTT_SHARE_GROUP") or "chargers"


def _direct_dispatch(app: Flask, ingest: IngestClient):
    """For a worker that does not hold the lease (so runs no scheduler): publish the
    commands a committed batch created (a fire cut-off) at once, itself. Another
    worker may publish the same pending command at the same moment: commands go
    at least once by contract (the pile answers a repeated id with the same ack)."""
    created = threading.Event()

    def on_created(_sender, **_kwargs):
        created.set()

    commands.command_created.connect(on_created, weak=False)

    def after_commit() -> None:
        if created.is_set():
            created.clear()
            with app.app_context():
                commands.dispatch_pending(ingest.publish, None, settings.commands(app.config))

    return after_commit


def run(app: Flask, name: str | None = None) -> int:
    """Run until SIGTERM or SIGINT; returns the exit status (1: lost the lease)."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("got %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    freeze_startup_heap()
    client_id, group = worker_identity(app.config, name)
    if group:
        return _run_shared(app, client_id, group, stop)

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


def _run_shared(app: Flask, client_id: str, group: str, stop: threading.Event) -> int:
    """One of several workers: the ingest runs at once (shared subscription); the
    scheduler runs only while this worker holds the lease, and a worker that loses
    the lease goes back to ingest only."""
    holder = leases.holder_id()
    ingest = IngestClient(app, client_id=client_id, share_group=group)
    waiter = threading.Thread(target=lambda: (stop.wait(), ingest.stopping.set()), daemon=True)
    waiter.start()
    if not ingest.start():
        log.info("stopped before the broker appeared")
        return 0
    direct = _direct_dispatch(app, ingest)
    ingest.after_commit = direct
    scheduler = None
    log.info("worker %s running: ingest through $share/%s", client_id, group)
    try:
        while True:
            if scheduler is None:
                got = False
                try:
                    with app.app_context():
                        got = leases.acquire(LEASE, holder, utcnow(), LEASE_TTL_S)
                except Exception:
                    log.exception("could not take the worker lease")
                if got:
                    scheduler = build_scheduler(app, ingest)
                    waker = _dispatch_waker(scheduler)
                    ingest.after_commit = waker
                    scheduler.start()
                    log.info("holding the worker lease as %s: %d jobs scheduled", holder,
                             len(scheduler.get_jobs()))
            elif not _renew_lease(app, holder):
                log.error("lost the worker lease; running the ingest only")
                ingest.after_commit = direct
                scheduler.shutdown(wait=True)
                scheduler = None
            if stop.wait(LEASE_RENEW_S if scheduler is not None else LEASE_RENEW_S / 2):
                break
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        ingest.stop()
        if scheduler is not None:
            try:
                with app.app_context():
                    leases.release(LEASE, holder)
            except Exception:
                log.exception("could not release the worker lease")
        log.info("worker stopped")
    return 0
