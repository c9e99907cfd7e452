"""Memory settings of the long-running processes (the worker, each gunicorn worker)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move what exists after start-up (modules, the app, SQLAlchemy's mappings: some
    hundreds of thousands of objects) out of the cyclic garbage collector's view
    (gc.freeze). A batch leaves tens of thousands of ORM objects in reference cycles,
    so the oldest generation is collected about once a second; each of those
    collections walked the whole heap and stopped the ingest for ~100 ms, the tail of
    publish → visible (bench/visible_latency.py). Web requests build views the same way."""
    gc.collect()
    gc.freeze()
