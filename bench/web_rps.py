"""Web throughput: the alley API (`GET /api/v1/alleys/<slug>`) and the alley HTML page
under gunicorn as deployed (deploy/gunicorn.conf.py, 2 sync workers), 50 concurrent
connections, against a trivial JSON endpoint in the same server.

    .venv/bin/python bench/web_rps.py [--piles 20] [--ports 10] [--seconds 10]
        [--connections 50] [--db postgres|sqlite] [--json PATH]

Load tool: `wrk` when installed (apt install wrk), else a small Python client
(threads with keep-alive connections; it tops out lower than wrk: the figures then
say so). Plain GETs without If-None-Match: the server sends the full body each
time (from its view cache while the alley does not change). Nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

WRK = shutil.which("wrk")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run([WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "tool": "wrk",
            "errors": int(errors.group(1)) if errors else 0}


def run_python(url: str, seconds: int, connections: int) -> dict:
    """A fallback load tool: `connections` threads, each a keep-alive connection."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(.*)", url).groups()
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status >= 400:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                continue
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": len(lat) / (time.monotonic() - t0), "p50_ms": h.median(lat),
            "p99_ms": h.pct(lat, 99), "tool": "python", "errors": errors[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--piles", type=int, default=20)
    ap.add_argument("--ports", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    ap.add_argument("--db", default="postgres", choices=["postgres", "sqlite"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.db == "postgres" and h.Database.postgres_reachable():
        print("PostgreSQL not reachable: using SQLite")
        args.db = "sqlite"
    load = run_wrk if WRK else run_python
    print(f"web: {args.piles * args.ports} ports, gunicorn {args.workers} sync workers, "
          f"{args.connections} connections x {args.seconds} s, {'wrk' if WRK else 'python'} "
          f"load; {h.python()}; {h.load_note()}", flush=True)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="chargers-bench-web-") as tmp:
        wd = Path(tmp)
        db = web = None
        try:
            db = h.Database(args.db, wd)
            env = h.app_env(db.url, "mqtt://127.0.0.1:1", wd, CHARGERS_ENV="development")
            h.migrate(env)
            h.seed(env, "bench", [f"W-{i:03d}" for i in range(args.piles)], args.ports)
            h.set_states(env)
            web = h.Web(env, wd, args.workers)
            rows = []
            for name, path in (("trivial", "/__bench/trivial"), ("api", "/api/v1/alleys/bench"),
                               ("page", "/a/bench")):
                load(web.url + path, 2, 10)  # warm up (imports, caches, connections)
                r = load(web.url + path, args.seconds, args.connections)
                figures[name] = r
                rows.append([name, path, f"{r['rps']:.0f}", f"{r['p50_ms']:.1f}",
                             f"{r['p99_ms']:.1f}", str(r["errors"])])
                print(f"  {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms", flush=True)
        finally:
            if web:
                web.stop()
            if db:
                db.close()
    print()
    print(h.table(rows, ["what", "path", "req/s", "p50 ms", "p99 ms", "errors"]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
