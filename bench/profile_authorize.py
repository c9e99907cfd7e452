"""Where an `authorize` answer's time goes: the ingest's batch function
(handlers.process) on `authorize` messages alone, in process, without a broker, in a
budgeted alley that has residents charging and a queue (budget_sim.py's evening).

    .venv/bin/python bench/profile_authorize.py [--db postgres|sqlite] [--batch 1]
        [--asks 200] [--top 25] [--no-profile]

Prints milliseconds per authorize, SQL statements per authorize (by statement) and the
cProfile functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402


def evening(pile_ids: list[str], now: datetime, ports: int) -> list[tuple[str, dict]]:
    """Boots (with the `authorize` feature), then half the ports charging at 380 W
    (a session start and a reading each): the alley's load before the asks."""
    out: list[tuple[str, dict]] = []
    ts = h.iso(now - timedelta(seconds=30))
    for p in pile_ids:
        out.append((f"{h.PREFIX}/{p}/boot", {
            "id": f"{p}-boot", "ts": ts, "seq": 0, "model": "SIM", "firmware": "1",
            "ports": ports, "features": ["config", "authorize", "start"]}))
    k = 0
    for p in pile_ids:
        for port in range(1, ports // 2 + 1):
            card = f"H{k:03d}"
            k += 1
            out.append((f"{h.PREFIX}/{p}/session", {
                "id": f"{p}-s{port}", "ts": ts, "seq": 2 * port - 1, "event": "start",
                "port": port, "session": f"{p}-S{port}", "card": card, "meter_wh": 0}))
            out.append((f"{h.PREFIX}/{p}/meter", {
                "id": f"{p}-m{port}", "ts": h.iso(now), "seq": 2 * port, "port": port,
                "session": f"{p}-S{port}", "power_w": 380.0, "energy_wh": 10.0}))
    return out


def asks(pile_ids: list[str], n: int, now: datetime, ports: int,
         households: int) -> list[tuple[str, dict]]:
    """n `authorize` messages on the free ports, cards of households not charging."""
    out = []
    free = [(p, port) for p in pile_ids for port in range(ports // 2 + 1, ports + 1)]
    for i in range(n):
        p, port = free[i % len(free)]
        out.append((f"{h.PREFIX}/{p}/authorize", {
            "id": f"{p}-a{i}", "ts": h.iso(now), "seq": 100 + i, "port": port,
            "card": f"H{(80 + i) % households:03d}"}))
    return out


def readings(pile_ids: list[str], others: list[str], n: int, now: datetime,
             ports: int) -> list[tuple[str, dict]]:
    """`--readings`: what the worker applies between the answers in budget_sim.py: the
    evening alley's charging ports' readings, and a thousand other piles' heartbeats and
    meter readings (for sessions they never announced, as budget_sim's background
    sends them), interleaved as they arrive."""
    out = []
    for i in range(n):
        if i % 10 == 0:  # the evening alley's share: about one message in ten
            p = pile_ids[(i // 10) % len(pile_ids)]
            port = (i // 10 // len(pile_ids)) % (ports // 2) + 1
            out.append((f"{h.PREFIX}/{p}/meter", {
                "id": f"{p}-r{i}", "ts": h.iso(now), "seq": 1000 + i, "port": port,
                "session": f"{p}-S{port}", "power_w": 380.0, "energy_wh": 10.0 + i / 100}))
            continue
        p = others[i % len(others)]
        k = i // len(others)
        if k % 6 == 0:
            out.append((f"{h.PREFIX}/{p}/heartbeat", {"id": f"h{i}", "ts": h.iso(now),
                                                      "rssi": -60}))
        else:
            out.append((f"{h.PREFIX}/{p}/meter", {
                "id": f"m{i}", "ts": h.iso(now), "port": k % 6, "session": f"{p}-{k % 6}",
                "power_w": 350.0, "energy_wh": float(k)}))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="postgres", choices=["sqlite", "postgres"])
    ap.add_argument("--batch", type=int, default=1, help="authorizes per batch")
    ap.add_argument("--asks", type=int, default=200)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--filter", default=None, help="only functions whose path matches (regex)")
    ap.add_argument("--readings", action="store_true",
                    help="profile budget_sim's readings and background traffic instead "
                         "(`--asks` of them, in batches of `--batch`)")
    args = ap.parse_args(argv)
    if args.db == "postgres" and (why := h.Database.postgres_reachable()):
        print(f"PostgreSQL not reachable ({why})")
        return 0
    with tempfile.TemporaryDirectory(prefix="chargers-prof-") as tmp:
        wd = Path(tmp)
        db = h.Database(args.db, wd)
        try:
            env = h.in_process(db, wd)
            # budget_sim.py's evening (its alley, limit, households and their setup),
            # imported only now: it imports chargers, whose config reads the
            # environment that in_process has just set.
            import budget_sim as ev

            pile_ids = [f"B{i:02d}" for i in range(1, ev.PILES + 1)]
            h.seed(env, "evening", pile_ids, ev.PORTS)
            others = [f"C{i:04d}" for i in range(ev.BACKGROUND_PILES)]
            if args.readings:
                h.seed(env, "city", others, 10)
            subprocess.run([h.PY, "-c", ev.SETUP, "evening", str(ev.LIMIT_W),
                            str(ev.LIMIT_W * ev.MARGIN_PCT // 100), str(ev.HOUSEHOLDS)],
                           cwd=h.ROOT, env=env, check=True, timeout=300)
            from sqlalchemy import event

            from chargers import create_app
            from chargers import settings as app_settings
            from chargers.extensions import db as sa
            from chargers.ingest import handlers

            app = create_app()
            now = datetime.now(UTC)

            def incoming(flat):
                return [handlers.Incoming(t, json.dumps(b).encode(), now) for t, b in flat]

            statements: Counter = Counter()
            sql_ms: Counter = Counter()
            with app.app_context():
                settings = app_settings.ingest(app.config)
                handlers.process(incoming(evening(pile_ids, now, ev.PORTS)), settings, now)
                if args.readings:
                    # A first round unprofiled: every pile's first heartbeat (it comes
                    # online) and every session's first reading (its baseline) are
                    # behind, as in the steady evening.
                    msgs = incoming(readings(pile_ids, others, 2 * args.asks, now, ev.PORTS))
                    warm, msgs = msgs[:args.asks], msgs[args.asks:]
                    for i in range(0, len(warm), args.batch):
                        handlers.process(warm[i:i + args.batch], settings, now)
                else:
                    msgs = incoming(asks(pile_ids, args.asks, now, ev.PORTS, ev.HOUSEHOLDS))

                @event.listens_for(sa.engine, "before_cursor_execute")
                def count(conn, cursor, statement, parameters, context, executemany):
                    statements[" ".join(statement.split())[:110]] += 1
                    context._bench_t0 = time.perf_counter()

                @event.listens_for(sa.engine, "after_cursor_execute")
                def timed(conn, cursor, statement, parameters, context, executemany):
                    sql_ms[" ".join(statement.split())[:110]] += (
                        time.perf_counter() - context._bench_t0) * 1000

                prof = cProfile.Profile()
                outcomes: Counter = Counter()
                t0 = time.perf_counter()
                for i in range(0, len(msgs), args.batch):
                    if not args.no_profile:
                        prof.enable()
                    out = handlers.process(msgs[i:i + args.batch], settings, now)
                    prof.disable()
                    outcomes.update(out)
                elapsed = time.perf_counter() - t0
        finally:
            db.close()
    n = len(msgs)
    what = "message" if args.readings else "authorize"
    print(f"{what} on {args.db}, batches of {args.batch}: {elapsed * 1000 / n:.1f} ms per "
          f"{what} (profiler {'off' if args.no_profile else 'on'}); outcomes "
          f"{dict(outcomes)}; {h.load_note()}")
    total = sum(statements.values())
    print(f"SQL statements: {total / n:.1f} per {what}, {sum(sql_ms.values()) / n:.1f} ms "
          f"per {what} in the driver (count and ms per {what}):")
    for stmt, k in statements.most_common(30):
        print(f"  {k / n:5.2f} {sql_ms[stmt] / n:5.2f}  {stmt}")
    if not args.no_profile:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.filter or "", args.top)
        print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
