"""`make bench`: every benchmark once, in a few minutes on 2 cores, and
bench/results.json with the figures of issue 12. Each script still runs alone.

    .venv/bin/python bench/run_all.py [--messages 10000] [--seconds 10]

1. ingest_throughput.py: raw broker, worker on SQLite, on PostgreSQL, and two workers on
   PostgreSQL (shared subscription), the same burst from the same publishers (50 piles);
   then raw, one and two PostgreSQL workers with the burst spread over 500 piles;
2. visible_latency.py at half the sustained PostgreSQL rate just measured;
3. web_rps.py: the alley API and page vs a trivial endpoint, gunicorn as deployed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = str(BENCH.parent / ".venv" / "bin" / "python")


def run(script: str, *args: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        subprocess.run([PY, str(BENCH / script), *args, "--json", out.name], check=True,
                       timeout=1200)
        return json.loads(Path(out.name).read_text() or "{}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 30,000: at ~6,000 msg/s a burst of 10,000 left ~1.2 s between 10 % and 90 %
    # committed, and the two-worker ratio moved from 1.0 to 1.5 between runs.
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--seconds", type=int, default=10, help="per web and latency run")
    ap.add_argument("--out", default=str(BENCH / "results.json"))
    args = ap.parse_args(argv)
    started = time.time()
    ing = run("ingest_throughput.py", "--messages", str(args.messages), "--inflight", "20",
              "--db", "sqlite,postgres,postgres2w")
    # The same burst spread over 500 piles (a district rather than one big alley): one
    # worker, then two on the shared subscription. With 50 piles every batch of either
    # worker names nearly every pile (see IngestBatch._lock_share).
    city = run("ingest_throughput.py", "--messages", str(args.messages), "--inflight", "20",
               "--piles", "500", "--db", "postgres,postgres2w")
    raw = ing.get("raw_msgs_per_s", 0.0)
    pg = ing.get("postgres_msgs_per_s", 0.0)
    vis = run("visible_latency.py", "--rate", f"{max(pg / 2, 20):.0f}",
              "--seconds", str(args.seconds))
    web = run("web_rps.py", "--seconds", str(args.seconds))

    def ratio(a, b):
        return round(a / b, 3) if a and b else None

    def per_run(suffix: str) -> dict:
        """`<run>_<suffix>` figures of both ingest scripts, by run (500-pile runs
        prefixed), leaving out those a run could not measure."""
        both = [*ing.items(), *((f"500piles_{k}", v) for k, v in city.items())]
        return {k.removesuffix(suffix): v for k, v in both
                if k.endswith(suffix) and v is not None}

    results = {
        "raw_msgs_per_s": round(raw, 1),
        "ingest_sqlite_msgs_per_s": round(ing.get("sqlite_msgs_per_s", 0.0), 1),
        "ingest_pg_msgs_per_s": round(pg, 1),
        "ingest_sqlite_ratio": ratio(ing.get("sqlite_msgs_per_s"), raw),
        "ingest_pg_ratio": ratio(pg, raw),
        "ingest_pg_2w_msgs_per_s": round(ing.get("postgres2w_msgs_per_s", 0.0), 1),
        "ingest_pg_2w_ratio_to_1w": ratio(ing.get("postgres2w_msgs_per_s"), pg),
        "ingest_pg_500piles_msgs_per_s": round(city.get("postgres_msgs_per_s", 0.0), 1),
        "ingest_pg_2w_500piles_msgs_per_s": round(city.get("postgres2w_msgs_per_s", 0.0), 1),
        "ingest_pg_2w_500piles_ratio_to_1w": ratio(city.get("postgres2w_msgs_per_s"),
                                                   city.get("postgres_msgs_per_s")),
        "raw_500piles_msgs_per_s": round(city.get("raw_msgs_per_s", 0.0), 1),
        "visible_p50_ms": round(vis["visible_p50_ms"], 1),
        "visible_p99_ms": round(vis["visible_p99_ms"], 1),
        "api_rps": round(web["api"]["rps"], 1),
        "page_rps": round(web["page"]["rps"], 1),
        "trivial_rps": round(web["trivial"]["rps"], 1),
        "api_ratio": ratio(web["api"]["rps"], web["trivial"]["rps"]),
        "page_ratio": ratio(web["page"]["rps"], web["trivial"]["rps"]),
        "api_p99_ms": round(web["api"]["p99_ms"], 1),
        "page_p99_ms": round(web["page"]["p99_ms"], 1),
        "_notes": {
            "exactly_once": per_run("_exactly_once"),
            # Share of both cores busy while the burst was applied: one worker already
            # leaves little for a second one on a 2-core machine.
            "machine_cpu_busy": {k: round(v, 2)
                                 for k, v in per_run("_machine_cpu_busy").items()},
            "visible_rate_msgs_per_s": round(vis.get("rate", 0.0), 1),
            "load_tool": web["api"].get("tool"),
            "load_average_at_end": Path("/proc/loadavg").read_text().split()[:3],
            "minutes": round((time.time() - started) / 60, 1),
        },
    }
    # Merge into the file: other scripts (bench/settle_bench.py) keep their keys there.
    out = Path(args.out)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"\nwrote {args.out}:\n{json.dumps(results, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
