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
from .constants import CommandAction
from .heap import freeze_startup_heap
from .ingest.client import IngestClient
from .models import utcnow
from .scheduler import build_scheduler
from .services import leases
from .services.devices import commands

log = logging.getLogger(__name__)


DISPATCH_JOB = "commands-dispatch"
LEASE = "worker"
LEASE_TTL_S = 30  # a standby takes over this long after a holder on another host dies
LEASE_RENEW_S = 10


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


class Worker:
    r"""One worker process and its lease, a small state machine:

        standby --(lease taken)--> leading --(lease lost)--> standby (shared) / stop (single)
           \______________________(SIGTERM/SIGINT)________________________/--> stop

    - **single** (no WORKER_NAME): nothing runs on standby; leading runs the ingest and
      the scheduler; a lost lease stops the process (exit 1) so that two never run.
    - **shared** (one of several named workers): the ingest runs in every state
      (its share of `$share/<group>/…`); leading adds the scheduler, and a lost lease
      goes back to ingest only.

    A command a committed ingest batch created (a fire cut-off) goes out at once: the
    leader wakes its dispatch job, a standby publishes it itself (at least once: the
    pile answers a repeated id with the same ack)."""

    def __init__(self, app: Flask, name: str | None = None):
        self.app = app
        self.client_id, self.group = worker_identity(app.config, name)
        self.holder = leases.holder_id()
        self.stop = threading.Event()
        self.ingest: IngestClient | None = None
        self.scheduler: BaseScheduler | None = None
        self._created = threading.Event()
        self._answers = threading.Event()  # a batch answered a pile's `authorize`
        commands.command_created.connect(self._on_created, weak=False)

    # --- the lease -------------------------------------------------------------

    def _acquire(self, *, if_unanswered: bool) -> bool:
        """Take or renew the lease. A database that does not answer gives
        `if_unanswered`: not taken (standing by), or not lost (leading: the lease is
        still ours until it expires)."""
        try:
            with self.app.app_context():
                return leases.acquire(LEASE, self.holder, utcnow(), LEASE_TTL_S)
        except Exception:
            log.exception("could not take or renew the worker lease")
            return if_unanswered

    def _take(self) -> bool:
        return self._acquire(if_unanswered=False)

    def _renew(self) -> bool:
        """False when the lease was lost (another worker has it)."""
        return self._acquire(if_unanswered=True)

    def _release(self) -> None:
        try:
            with self.app.app_context():
                leases.release(LEASE, self.holder)
        except Exception:  # it expires by itself
            log.exception("could not release the worker lease")

    def _other_holder(self) -> str | None:
        with self.app.app_context():
            return leases.current_holder(LEASE)

    # --- commands created by a batch ---------------------------------------------

    def _on_created(self, sender, **_kwargs) -> None:
        if getattr(sender, "action", None) == CommandAction.AUTHORIZE:
            self._answers.set()
        self._created.set()

    def _after_commit(self) -> None:
        if self._answers.is_set():
            # A pile waits (10 s at most) for the answer to its `authorize`: published
            # here, in the ingest's thread, right after the batch's commit, rather than
            # by the dispatch job a scheduler wake-up later.
            self._answers.clear()
            with self.app.app_context():
                commands.publish_answers(self.ingest.publish, None,
                                         settings.commands(self.app.config))
        if not self._created.is_set():
            return
        self._created.clear()
        if self.scheduler is not None:
            try:
                self.scheduler.modify_job(DISPATCH_JOB, next_run_time=datetime.now(UTC))
            except JobLookupError:
                pass
            return
        with self.app.app_context():
            commands.dispatch_pending(self.ingest.publish, None, settings.commands(self.app.config))

    # --- states ------------------------------------------------------------------

    def _start_ingest(self) -> bool:
        self.ingest = (IngestClient(self.app, client_id=self.client_id, share_group=self.group)
                       if self.group else IngestClient(self.app))
        self.ingest.after_commit = self._after_commit
        # The embedded broker may not have written its address yet; a signal must
        # still be able to stop us while we wait.
        threading.Thread(target=lambda: (self.stop.wait(), self.ingest.stopping.set()),
                         daemon=True).start()
        if not self.ingest.start():
            log.info("stopped before the broker appeared")
            return False
        return True

    def _lead(self) -> None:
        self.scheduler = build_scheduler(self.app, self.ingest)
        self.scheduler.start()

    def _step_down(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None

    def _standby_single(self) -> bool:
        """Wait until this process holds the lease (True), or is told to stop. A second
        worker started by mistake stands by instead of fighting the first over the MQTT
        client id and running every job twice."""
        said = False
        while not self._take():
            if not said:
                log.warning("another worker (%s) holds the lease; standing by", self._other_holder())
                said = True
            if self.stop.wait(LEASE_RENEW_S / 2):
                return False
        return True

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit status (1: lost the lease)."""
        return self._run_shared() if self.group else self._run_single()

    def _run_single(self) -> int:
        if not self._standby_single():
            log.info("stopped while standing by")
            return 0
        log.info("holding the worker lease as %s", self.holder)
        status = 0
        try:
            if not self._start_ingest():
                return 0
            self._lead()
            log.info("worker running: %d jobs scheduled", len(self.scheduler.get_jobs()))
            try:
                while not self.stop.wait(LEASE_RENEW_S):
                    if not self._renew():
                        log.error("lost the worker lease to another worker; stopping")
                        status = 1
                        break
            finally:
                self._step_down()
                self.ingest.stop()
        finally:
            if status == 0:
                self._release()
            log.info("worker stopped")
        return status

    def _run_shared(self) -> int:
        if not self._start_ingest():
            return 0
        log.info("worker %s running: ingest through $share/%s", self.client_id, self.group)
        try:
            while True:
                if self.scheduler is None:
                    if self._take():
                        self._lead()
                        log.info("holding the worker lease as %s: %d jobs scheduled", self.holder,
                                 len(self.scheduler.get_jobs()))
                elif not self._renew():
                    log.error("lost the worker lease; running the ingest only")
                    self._step_down()
                wait = LEASE_RENEW_S if self.scheduler is not None else LEASE_RENEW_S / 2
                if self.stop.wait(wait):
                    break
        finally:
            leading = self.scheduler is not None
            self._step_down()
            self.ingest.stop()
            if leading:
                self._release()
            log.info("worker stopped")
        return 0


def run(app: Flask, name: str | None = None) -> int:
    """`flask worker`: one Worker until SIGTERM or SIGINT; the exit status."""
    worker = Worker(app, name)

    def on_signal(signum, _frame):
        log.info("got %s; stopping", signal.Signals(signum).name)
        worker.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    freeze_startup_heap()
    return worker.run()
