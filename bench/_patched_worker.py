"""`flask --app wsgi worker` with a proposed change patched in (for the benches'
--variant); the code under chargers/ is not touched.

    python bench/_patched_worker.py VARIANT

Variants: those of profile_ingest.py (ingest batch), `wake-dispatch`,
`switch-interval`, `batch-log` and `short-batches`.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def wake_dispatch() -> None:
    """Proposed change: when an ingest batch that created commands (a critical alert's
    cut-off) has committed, run `commands-dispatch` now instead of at its next 1 s tick."""
    from chargers import worker
    from chargers.ingest.client import IngestClient
    from chargers.services.devices import commands

    created = threading.Event()
    holder: dict = {}
    original_create, original_build = commands.create, worker.build_scheduler
    original_apply = IngestClient._apply_and_ack

    def create(*args, **kwargs):
        cmd = original_create(*args, **kwargs)
        created.set()
        return cmd

    def build_scheduler(*args, **kwargs):
        holder["scheduler"] = original_build(*args, **kwargs)
        return holder["scheduler"]

    def apply_and_ack(self, batch):
        original_apply(self, batch)
        if created.is_set() and "scheduler" in holder:
            created.clear()
            holder["scheduler"].modify_job("commands-dispatch", next_run_time=datetime.now(UTC))

    commands.create = create
    worker.build_scheduler = build_scheduler
    IngestClient._apply_and_ack = apply_and_ack


def switch_interval() -> None:
    """Experiment: the interpreter hands its lock between threads every 0.5 ms instead
    of 5 ms (does the paho thread wait on the batch thread for the lock?)."""
    sys.setswitchinterval(0.0005)


def batch_log() -> None:
    """Measurement, no change: every batch's start (monotonic), length in ms, size and
    how many urgent messages it held, into worker.log's folder (batches.log)."""
    import os
    import time

    from chargers.ingest import client as ingest_client

    path = Path(os.environ.get("BENCH_BATCH_LOG", "batches.log"))
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    original = ingest_client.IngestClient._apply_and_ack

    def apply_and_ack(self, batch):
        t0 = time.monotonic()
        original(self, batch)
        n_urgent = sum(1 for r in batch if ingest_client.urgent(r.msg))
        out.write(f"{t0:.4f} {(time.monotonic() - t0) * 1000:.1f} {len(batch)} {n_urgent}\n")

    ingest_client.IngestClient._apply_and_ack = apply_and_ack


def short_batches() -> None:
    """Tried and not kept (docs/performance.md): while piles ask (an authorize in the
    last 120 s), a batch of other messages takes only what the worker applies in about
    60 ms. On budget_sim's evening it made the worker fall behind its readings: kept
    as a way to try the budget with a worker that lags."""
    import time

    from chargers.ingest import client as ingest_client

    cls = ingest_client.IngestClient
    cls._urgent_at, cls._ms_per_msg = float("-inf"), 0.0
    on_message, take, apply = cls._on_message, cls._take, cls._apply_and_ack

    def _on_message(self, client, userdata, message):
        if message.topic.rsplit("/", 1)[-1] in ingest_client.URGENT_KINDS:
            self._urgent_at = time.monotonic()
        on_message(self, client, userdata, message)

    def _take(self):
        keep = self.batch_max
        if time.monotonic() - self._urgent_at < 120 and self._ms_per_msg > 0:
            self.batch_max = min(keep, max(5, int(60 / self._ms_per_msg)))
        try:
            return take(self)
        finally:
            self.batch_max = keep

    def _apply_and_ack(self, batch):
        began = time.monotonic()
        apply(self, batch)
        if batch and not ingest_client.urgent(batch[0].msg):
            ms = (time.monotonic() - began) * 1000 / len(batch)
            self._ms_per_msg = ms if not self._ms_per_msg else 0.8 * self._ms_per_msg + 0.2 * ms

    cls._on_message, cls._take, cls._apply_and_ack = _on_message, _take, _apply_and_ack


if __name__ == "__main__":
    import profile_ingest
    from flask.cli import main as flask_main

    variants = {**profile_ingest.VARIANTS, "wake-dispatch": wake_dispatch,
                "switch-interval": switch_interval, "batch-log": batch_log,
                "short-batches": short_batches}
    variants[sys.argv[1]]()
    sys.argv = ["flask", "--app", "wsgi", "worker"]
    flask_main()
