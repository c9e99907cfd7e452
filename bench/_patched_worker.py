"""`flask --app wsgi worker` with a proposed change patched in (for the benches'
--variant); the code under chargers/ is not touched.

    python bench/_patched_worker.py VARIANT

Variants: those of profile_ingest.py (ingest batch), `wake-dispatch` and
`switch-interval`.
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


if __name__ == "__main__":
    import profile_ingest
    from flask.cli import main as flask_main

    variants = {**profile_ingest.VARIANTS, "wake-dispatch": wake_dispatch,
                "switch-interval": switch_interval}
    variants[sys.argv[1]]()
    sys.argv = ["flask", "--app", "wsgi", "worker"]
    flask_main()
