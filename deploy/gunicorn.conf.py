"""gunicorn settings of the web (deploy/chargers-web.service runs
`gunicorn -c deploy/gunicorn.conf.py wsgi:app`). Sync workers: each request is short
(the alley view is cached per state version); 2 × cores + 1 is gunicorn's rule, but
the database and the ingest workers share the machine, so the unit sets -w."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5  # behind nginx: connections to the upstream are reused
# Recycle a worker now and then (a guard against a leak; its caches are bounded). A
# recycle stalls the requests on that worker's connections for the ~1 s a new worker
# takes to start: every 20,000 requests put that second into the p99 of a busy minute
# (make bench), so it is rare: ~3 hours at 100 requests a second.
max_requests = 1_000_000
max_requests_jitter = 50_000
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"
errorlog = "-"


def post_worker_init(worker):
    """After loading the app: chargers.heap.freeze_startup_heap (a full collection of
    the cyclic garbage collector walked all of it)."""
    from chargers.heap import freeze_startup_heap

    freeze_startup_heap()
