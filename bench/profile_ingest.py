"""Where the worker's time goes: the ingest's batch function (handlers.process), in
process, without a broker, on the same message mix as ingest_throughput.py.

    .venv/bin/python bench/profile_ingest.py [--messages 4000] [--batch 200]
        [--db sqlite|postgres] [--top 25]

Prints messages/s of handlers.process alone, SQL statements per message (by kind of
statement), and the cProfile functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402


def _as_is() -> None:
    pass


def _pile_no_autoflush() -> None:
    """Proposed change 1: IngestBatch.pile() looks the pile up without an autoflush.
    As is, the first message of each pile in a batch flushes every pending row first,
    so a batch of 200 messages from 50 piles flushes ~50 times and UPDATEs each
    pile row once per flush."""
    from chargers.extensions import db
    from chargers.models import Pile
    from chargers.services.ingest.message_log import IngestBatch

    def pile(self, pile_id):
        if pile_id not in self.piles:
            with db.session.no_autoflush:
                self.piles[pile_id] = db.session.get(Pile, pile_id)
        return self.piles[pile_id]

    IngestBatch.pile = pile


def _prefetch() -> None:
    """Proposed change 2 (with 1): at the start of a batch, load its piles (with their
    ports) in one SELECT ... IN and its already-applied (pile, id) pairs in one more,
    so neither pile(), port_of() nor is_duplicate() queries (and autoflushes) per
    message."""
    import json

    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from chargers.extensions import db
    from chargers.ingest import handlers
    from chargers.models import Pile, ProcessedMessage
    from chargers.protocol import topics
    from chargers.services.ingest import message_log

    _pile_no_autoflush()

    def is_duplicate(self, pile_id, msg_id):
        return (pile_id, msg_id) in self.seen or (pile_id, msg_id) in self.known

    def _run(messages, settings, now):
        batch = message_log.IngestBatch(now=now, throttle=handlers._throttle())
        pile_ids, msg_ids = set(), set()
        for m in messages:
            try:
                pile_ids.add(topics.parse(m.topic, settings.prefix).pile_id)
                msg_ids.add(str(json.loads(m.payload)["id"])[:64])
            except Exception:  # noqa: BLE001 - the real decode rejects it later
                pass
        with db.session.no_autoflush:
            for p in db.session.scalars(select(Pile).where(Pile.id.in_(pile_ids))
                                        .options(selectinload(Pile.ports))):
                batch.piles[p.id] = p
            batch.known = set(db.session.execute(
                select(ProcessedMessage.pile_id, ProcessedMessage.msg_id)
                .where(ProcessedMessage.pile_id.in_(pile_ids),
                       ProcessedMessage.msg_id.in_(msg_ids))).tuples())
        outcomes = [handlers.apply(m, batch, settings) for m in messages]
        batch.flush()
        db.session.commit()
        return outcomes

    message_log.IngestBatch.is_duplicate = is_duplicate
    handlers._run = _run


def status_changes(pile_ids: list[str], ports: int, n: int) -> list[tuple[str, dict]]:
    """n status messages, every one a change, ports in turn (visible_latency.py's load)."""
    cycle = h.STATUS_CYCLE
    pairs = [(p, q) for p in pile_ids for q in range(1, ports + 1)]
    out, now = [], datetime.now(UTC)
    for i in range(n):
        pile, port = pairs[i % len(pairs)]
        out.append((f"{h.PREFIX}/{pile}/status",
                    {"id": f"s{i}", "ts": h.iso(now), "port": port,
                     "status": cycle[(i // len(pairs)) % len(cycle)]}))
    return out


def _no_grade() -> None:
    """Measurement, not a proposal: the risk grade and the backend's limits off (no
    reading folded into a grade, no batch reads for it), to tell what the grade itself
    costs the ingest from what the rest of the path costs."""
    from chargers.services.safety import limits

    limits.on_reading = lambda *a, **k: None
    limits.BatchReads.of_piles = classmethod(lambda cls, *a, **k: cls())


# The phases of a batch that --phases times (module, dotted name), outermost first.
PHASES = [
    ("chargers.ingest.handlers", "process"),
    ("chargers.ingest.handlers", "_prefetch"),
    ("chargers.services.ingest.message_log", "IngestBatch.prefetch"),
    ("chargers.services.ingest.message_log", "IngestBatch._lock_share"),
    ("chargers.services.devices.presence", "fillable_gaps"),
    ("chargers.services.charging.sessions", "prefetch"),
    ("chargers.services.alerts.cutoff", "watch"),
    ("chargers.services.safety.limits", "BatchReads.of_piles"),
    ("chargers.ingest.handlers", "apply"),
    ("chargers.services.budget.queue", "after_batch"),
    ("chargers.services.ingest.message_log", "IngestBatch.flush"),
    ("chargers.services.ingest.message_log", "IngestBatch._write_piles_and_ports"),
    ("sqlalchemy.orm.session", "Session.flush"),
    ("chargers.models.bulk", "insert_many"),
    ("chargers.services.ingest.message_log", "add_counts"),
    ("chargers.services.billing.messages", "on_sessions"),
    ("sqlalchemy.orm.session", "Session.commit"),
]


def _phase_timers() -> tuple[Counter, Counter]:
    """Wall-clock timers around each of PHASES: (seconds, calls) by name. Nested
    phases count in their parents too; a phase that calls itself counts once per call."""
    import functools
    import importlib

    spent: Counter = Counter()
    calls: Counter = Counter()
    for module, dotted in PHASES:
        owner = importlib.import_module(module)
        *path, name = dotted.split(".")
        for part in path:
            owner = getattr(owner, part)
        is_classmethod = isinstance(vars(owner).get(name), classmethod)
        original = vars(owner)[name].__func__ if is_classmethod else getattr(owner, name)

        def timed(*a, _f=original, _k=dotted, **kw):
            t0 = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                spent[_k] += time.perf_counter() - t0
                calls[_k] += 1

        functools.update_wrapper(timed, original)
        setattr(owner, name, classmethod(timed) if is_classmethod else timed)
    return spent, calls


VARIANTS = {"as-is": _as_is, "pile-no-autoflush": _pile_no_autoflush, "prefetch": _prefetch,
            "no-grade": _no_grade}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--piles", type=int, default=50)
    ap.add_argument("--ports", type=int, default=10)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--variant", default="as-is", choices=list(VARIANTS),
                    help="as-is, or a proposed change patched in for this run only")
    ap.add_argument("--mix", default="pile", choices=["pile", "status"],
                    help="pile: the realistic mix of ingest_throughput.py; status: only "
                         "status changes, ports in turn (as visible_latency.py)")
    ap.add_argument("--no-profile", action="store_true", help="time without cProfile")
    ap.add_argument("--dump", default=None, help="also write the raw profile here (pstats)")
    ap.add_argument("--sql-top", type=int, default=15, help="how many kinds of statement --sql-time lists")
    ap.add_argument("--warmup", type=int, default=0,
                    help="batches applied first and not counted (they hold the boots and "
                         "warm the statement caches)")
    ap.add_argument("--phases", action="store_true",
                    help="also print the wall-clock ms per batch of each phase (PHASES)")
    ap.add_argument("--sql-time", action="store_true",
                    help="also print the time spent in the driver per kind of statement")
    args = ap.parse_args(argv)
    if args.db == "postgres" and (why := h.Database.postgres_reachable()):
        print(f"PostgreSQL not reachable ({why})")
        return 0
    with tempfile.TemporaryDirectory(prefix="chargers-prof-") as tmp:
        wd = Path(tmp)
        db = h.Database(args.db, wd)
        try:
            env = h.in_process(db, wd)
            pile_ids = [f"B-{i:03d}" for i in range(args.piles)]
            h.seed(env, "bench", pile_ids, args.ports)
            from sqlalchemy import event

            from chargers import create_app
            from chargers import settings as app_settings
            from chargers.extensions import db as sa
            from chargers.ingest import handlers

            app = create_app()
            from chargers.heap import freeze_startup_heap

            freeze_startup_heap()  # as the worker does at its start
            VARIANTS[args.variant]()
            phases = _phase_timers() if args.phases else None
            per = args.messages // args.piles
            if args.mix == "status":
                flat = status_changes(pile_ids, args.ports, args.messages)
            else:
                scripts = {p: h.pile_script(p, per, args.ports, "prof") for p in pile_ids}
                flat = h.interleave(scripts, 1)[0]
            import json

            msgs = [handlers.Incoming(t, json.dumps(b).encode(), datetime.now(UTC)) for t, b in flat]
            kinds = Counter(t.rsplit("/", 1)[1] for t, _ in flat)
            statements: Counter = Counter()
            sql_time: Counter = Counter()
            sql_calls: Counter = Counter()
            with app.app_context():
                settings = app_settings.ingest(app.config)

                @event.listens_for(sa.engine, "before_cursor_execute")
                def count(conn, cursor, statement, parameters, context, executemany):
                    statements[statement.split(None, 1)[0].upper()
                               + (" (many)" if executemany else "")] += 1
                    context._bench_t0 = time.perf_counter()

                @event.listens_for(sa.engine, "after_cursor_execute")
                def timed(conn, cursor, statement, parameters, context, executemany):
                    key = " ".join(statement.split())[:90] + (" (many)" if executemany else "")
                    sql_time[key] += time.perf_counter() - context._bench_t0
                    sql_calls[key] += 1

                warm = msgs[:args.warmup * args.batch]
                for i in range(0, len(warm), args.batch):
                    handlers.process(warm[i:i + args.batch], settings)
                msgs = msgs[len(warm):]
                kinds = Counter(m.topic.rsplit("/", 1)[1] for m in msgs)
                for counter in (statements, sql_time, sql_calls, *(phases or ())):
                    counter.clear()
                prof = cProfile.Profile()
                t0, cpu0 = time.perf_counter(), time.process_time()
                outcomes = Counter()
                for i in range(0, len(msgs), args.batch):
                    if not args.no_profile:
                        prof.enable()
                    out = handlers.process(msgs[i:i + args.batch], settings)
                    prof.disable()
                    outcomes.update(o.partition(":")[0] for o in out)
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
        finally:
            db.close()
    n = len(msgs)
    print(f"handlers.process on {args.db}, variant {args.variant}: {n} messages in batches of "
          f"{args.batch}: {n / elapsed:.0f} msg/s ({elapsed * 1000 / n:.3f} ms/message, "
          f"of which this process's CPU {cpu * 1000 / n:.3f}, "
          f"profiler {'off' if args.no_profile else 'on'}); "
          f"outcomes {dict(outcomes)}; mix {dict(kinds)}; {h.load_note()}")
    total = sum(statements.values())
    print(f"SQL statements: {total} ({total / n:.2f} per message): "
          + ", ".join(f"{k} {v}" for k, v in statements.most_common()))
    if args.sql_time:
        print(f"time in the driver (execute → result), {sum(sql_time.values()) * 1000:.0f} ms "
              f"of {elapsed * 1000:.0f} ms:")
        for key, t in sql_time.most_common(args.sql_top):
            print(f"  {t * 1000:7.1f} ms {sql_calls[key]:5d}x  {key}")
    if phases is not None:
        spent, calls = phases
        batches = calls["process"] or 1
        print("wall-clock per batch (nested phases count in their parents too):")
        for _, key in PHASES:
            if calls[key]:
                print(f"  {spent[key] * 1000 / batches:7.2f} ms  {calls[key] / batches:6.1f}x  {key}")
    if args.no_profile:
        return 0
    if args.dump:
        prof.dump_stats(args.dump)
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
    print(s.getvalue())
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
    print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
