"""Ingest throughput: how fast the real worker applies a burst of pile messages,
against the raw broker rate measured in the same run.

    .venv/bin/python bench/ingest_throughput.py [--messages 20000] [--piles 50]
        [--ports 10] [--publishers 5] [--db sqlite,postgres] [--inflight 20,1000]

For each Mosquitto `max_inflight_messages` value:
  1. baseline: the same publishers into a fresh private Mosquitto, read by a plain paho
     subscriber (persistent session, manual ack right on delivery) that only counts;
  2. for each database: a throwaway database (`flask db upgrade`), one alley with the
     piles (real services), the real worker (`flask --app wsgi worker`), then the same
     burst. The script polls the ledger (processed_messages) every 0.1 s to time each
     commit, and checks at the end that every message is applied exactly once.

Figures: publish rate (PUBACKs/s), delivered/applied rate, end-to-end lag p50/p99
(publish → arrival at the worker, publish → seen committed; the latter ±0.1 s), and
the worker's CPU. Benchmarks print figures; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402


def build_messages(args, run: str) -> tuple[list[str], list[list]]:
    pile_ids = [f"B-{i:03d}" for i in range(args.piles)]
    per = args.messages // args.piles
    extra = args.messages - per * args.piles
    scripts = {pid: h.pile_script(pid, per + (1 if i < extra else 0), args.ports, run)
               for i, pid in enumerate(pile_ids)}
    return pile_ids, h.interleave(scripts, args.publishers)


def publish_burst(port: int, lists: list[list], tag: str) -> tuple[list[h.Publisher], float, float]:
    """All lists at once, one publisher thread each; returns (publishers, t0, t_all_acked)."""
    pubs = [h.Publisher(port, f"bench-{tag}-pub{i}") for i in range(len(lists))]
    total = sum(len(x) for x in lists)
    t0 = time.time()
    threads = [threading.Thread(target=p.publish_all, args=(msgs,))
               for p, msgs in zip(pubs, lists, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    h.wait_until(lambda: sum(p.acked for p in pubs) >= total, 300, what="PUBACKs")
    return pubs, t0, max(p.last_ack for p in pubs)


# -- baseline -------------------------------------------------------------------------


class CountingSubscriber:
    """A plain paho subscriber with a persistent session and manual ack: acks each
    message as soon as it is delivered and counts it."""

    def __init__(self, port: int):
        self.count = 0
        self.first = self.last = 0.0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw-sub",
                                  protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(f"{h.PREFIX}/#", qos=1)
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("baseline subscriber not subscribed")

    def _on_message(self, client, userdata, msg):
        now = time.time()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now
        client.ack(msg.mid, msg.qos)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def baseline(args, workdir: Path, inflight: int | None) -> dict:
    broker = h.Broker(workdir / f"raw-{inflight}", max_inflight=inflight)
    sub = pubs = None
    try:
        sub = CountingSubscriber(broker.port)
        _, lists = build_messages(args, "raw")
        pubs, t0, t_acked = publish_burst(broker.port, lists, "raw")
        h.wait_until(lambda: sub.count >= args.messages, 300, what="baseline delivery")
        return {"pub_rate": args.messages / (t_acked - t0),
                "rate": args.messages / (sub.last - t0), "elapsed": sub.last - t0}
    finally:
        for p in pubs or []:
            p.close()
        if sub:
            sub.close()
        broker.stop()


# -- the worker -----------------------------------------------------------------------


def _as_epoch(value) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class LedgerPoller(threading.Thread):
    """Reads new ledger rows every 0.1 s; stamps each with the time it was first seen.

    Reads from the watermark: the highest id below which every id has been seen. With
    two workers ids are taken at insert and become visible at commit, so a batch of
    lower ids can commit after a batch of higher ones; an id missing for HOLE_S (a
    rolled-back insert leaves a hole in the sequence) is passed over. (Reading a fixed
    window of 5,000 rows below the highest id instead made the poller itself a load of
    ~50,000 rows a second on the same 2 cores.)"""

    HOLE_S = 2.0

    def __init__(self, db: h.Database):
        super().__init__(daemon=True)
        self.db = db
        self.seen: dict[tuple[str, str], tuple[float, float]] = {}  # → (seen_at, received_at)
        self.samples: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, tuple[int, int]]] = []  # (time, machine busy/total jiffies)
        self.stop = threading.Event()
        self.watermark = 0  # every id <= this has been seen (or passed over)
        self.ids: set[int] = set()  # seen ids above the watermark
        self.hole_since: float | None = None

    def run(self):
        while not self.stop.wait(0.1):
            try:
                rows = self.db.rows("SELECT id, pile_id, msg_id, received_at FROM "
                                    "processed_messages WHERE id > :last ORDER BY id",
                                    last=self.watermark)
            except Exception as exc:  # noqa: BLE001 - a locked SQLite: try next tick
                print(f"  (poll failed: {type(exc).__name__})", file=sys.stderr)
                continue
            now = time.time()
            for r in rows:
                self.seen.setdefault((r[1], r[2]), (now, _as_epoch(r[3])))
                self.ids.add(r[0])
            self._advance(now)
            self.samples.append((now, len(self.seen)))
            self.cpu.append((now, machine_jiffies()))

    def _advance(self, now: float) -> None:
        while self.ids:
            if self.watermark + 1 in self.ids:
                self.ids.discard(self.watermark + 1)
                self.watermark += 1
                self.hole_since = None
                continue
            if self.hole_since is None:
                self.hole_since = now
            if now - self.hole_since < self.HOLE_S:
                return
            self.watermark = min(self.ids) - 1  # a hole that did not fill
            self.hole_since = None


def worker_run(args, workdir: Path, db_kind: str, inflight: int | None) -> dict:
    """One run; `db_kind` "postgres2w" is PostgreSQL with two workers on a shared
    subscription (WORKER_NAME w1, w2)."""
    wd = workdir / f"{db_kind}-{inflight}"
    wd.mkdir(parents=True)
    broker = h.Broker(wd, max_inflight=inflight)
    db = worker = poller = None
    workers = []
    pubs = []
    n_workers = 2 if db_kind.endswith("2w") else 1
    try:
        db = h.Database(db_kind.removesuffix("2w"), wd)
        env = h.app_env(db.url, broker.url, wd, MQTT_PROTOCOL=args.mqtt_protocol)
        h.migrate(env)
        pile_ids, lists = build_messages(args, "w")
        h.seed(env, "bench", pile_ids, args.ports)
        if n_workers == 1:
            workers = [h.Worker(env, wd, args.variant)]
        else:
            for i in range(n_workers):
                (wd / f"w{i + 1}").mkdir()
                workers.append(h.Worker({**env, "WORKER_NAME": f"w{i + 1}"}, wd / f"w{i + 1}",
                                        args.variant))
        for w in workers:
            w.wait_subscribed()
        worker = workers[0]
        cpu0 = sum(w.cpu_seconds() or 0 for w in workers)
        rss0 = worker.peak_rss_mb()
        poller = LedgerPoller(db)
        poller.start()
        if n_workers > 1:
            # A boot resets a pile's sequence: with several workers it could overtake
            # the messages after it (docs/performance.md). The piles boot first.
            boots = [[m for m in x if m[0].endswith("/boot")] for x in lists]
            lists = [[m for m in x if not m[0].endswith("/boot")] for x in lists]
            boot_pubs, _, _ = publish_burst(broker.port, boots, f"{db_kind}{inflight}boot")
            pubs.extend(boot_pubs)
            h.wait_until(lambda: len(poller.seen) >= len(pile_ids), 120, step=0.2,
                         what="the boots")
        burst, t0, t_acked = publish_burst(broker.port, lists, f"{db_kind}{inflight}")
        pubs.extend(burst)
        try:
            h.wait_until(lambda: len(poller.seen) >= args.messages, args.timeout, step=0.2,
                         what="the worker to apply every message")
        except TimeoutError as exc:
            print(f"  {exc}; {len(poller.seen)} of {args.messages} applied", file=sys.stderr)
        time.sleep(0.3)  # one more poll
        poller.stop.set()
        poller.join(5)
        cpu1 = sum(w.cpu_seconds() or 0 for w in workers)
        rss1 = worker.peak_rss_mb()
        sent = {}
        for p in pubs:
            sent.update(p.sent_at)
        seen = poller.seen
        commit_lag = [seen[k][0] - t for k, t in sent.items() if k in seen]
        arrival_lag = [seen[k][1] - t for k, t in sent.items() if k in seen]
        times = sorted(v[0] for v in seen.values())
        n = len(times)
        # Sustained rate: between 10 % and 90 % of the burst committed (skips start-up
        # and the tail); the overall figure runs from the first publish to the last commit.
        lo, hi = times[n // 10] if n else 0, times[(9 * n) // 10 - 1] if n >= 10 else 0
        sustained = (0.8 * n) / (hi - lo) if hi > lo else float("nan")
        busy = machine_busy(poller.cpu, lo, hi)
        # exactly once, from the database itself
        ledger = db.scalar("SELECT count(*) FROM processed_messages")
        distinct = db.scalar("SELECT count(*) FROM (SELECT DISTINCT pile_id, msg_id "
                             "FROM processed_messages) x")
        counters = dict(db.rows("SELECT key, count FROM ingest_counters"))
        accepted = sum(v for k, v in counters.items() if k.startswith("accepted:"))
        meters_sent = sum(1 for msgs in lists for t, _ in msgs if t.endswith("/meter"))
        meters_db = db.scalar("SELECT count(*) FROM meter_samples")
        # out of order across workers is fine; a gap never filled is not
        gaps = db.scalar("SELECT count(*) FROM seq_gaps WHERE status <> 'filled'")
        missing = len(set(sent) - set(seen))
        return {
            "pub_rate": args.messages / (t_acked - t0),
            "rate": n / (times[-1] - t0) if n else 0.0,
            "sustained": sustained,
            "arr50": h.median(arrival_lag), "arr99": h.pct(arrival_lag, 99),
            "lag50": h.median(commit_lag), "lag99": h.pct(commit_lag, 99),
            "rss": f"{rss0:.0f}->{rss1:.0f}" if rss0 and rss1 else "?",
            "machine_busy": busy,
            "cpu_per_1k": (cpu1 - cpu0) / max(n, 1) * 1000 if cpu0 is not None and cpu1 else None,
            "exactly_once": (ledger == distinct == args.messages == accepted and not missing
                             and meters_db == meters_sent and not gaps
                             and counters.get("duplicate", 0) == 0
                             and not any(k.startswith("rejected") for k in counters)),
            "detail": (f"ledger {ledger} (distinct {distinct}), accepted {accepted}, "
                       f"duplicate {counters.get('duplicate', 0)}, rejected "
                       f"{sum(v for k, v in counters.items() if k.startswith('rejected'))}, "
                       f"meter samples {meters_db}/{meters_sent}, seq gaps {gaps}, "
                       f"missing {missing}"),
        }
    finally:
        if poller:
            poller.stop.set()
        for p in pubs:
            p.close()
        for w in workers:
            w.stop()
        broker.stop()
        if db:
            db.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--piles", type=int, default=50)
    ap.add_argument("--ports", type=int, default=10)
    ap.add_argument("--publishers", type=int, default=5)
    ap.add_argument("--db", default="sqlite,postgres",
                    help="comma list: sqlite, postgres, postgres2w (two workers)")
    ap.add_argument("--json", default=None,
                    help="also write the figures (msg/s, first inflight value) to this file")
    ap.add_argument("--inflight", default="20,1000",
                    help="Mosquitto max_inflight_messages values (20 is its default)")
    ap.add_argument("--mqtt-protocol", default="3.1.1", choices=["3.1.1", "5"],
                    help="the worker's MQTT version (MQTT_PROTOCOL)")
    ap.add_argument("--variant", default="as-is",
                    choices=["as-is", "pile-no-autoflush", "prefetch", "batch-log"],
                    help="run the worker with a change proposed in profile_ingest.py patched "
                         "in, or `batch-log` (each batch's size and length into "
                         "$BENCH_BATCH_LOG)")
    ap.add_argument("--timeout", type=float, default=240, help="max seconds to drain one run")
    args = ap.parse_args(argv)
    kinds = [k for k in args.db.split(",") if k]
    if any(k.startswith("postgres") for k in kinds):
        why = h.Database.postgres_reachable()
        if why:
            print(f"PostgreSQL skipped: not reachable at 127.0.0.1:5432 ({why})")
            kinds = [k for k in kinds if not k.startswith("postgres")]
    inflights = [int(x) for x in args.inflight.split(",") if x]
    print(f"ingest throughput: {args.messages} messages, {args.piles} piles x {args.ports} ports, "
          f"{args.publishers} publishers (QoS 1), worker on MQTT {args.mqtt_protocol}"
          f"{'' if args.variant == 'as-is' else ', worker variant ' + args.variant}; "
          f"{h.python()}; {h.load_note()}")
    rows = []
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="chargers-bench-") as tmp:
        workdir = Path(tmp)
        for inflight in inflights:
            raw = baseline(args, workdir, inflight)
            figures.setdefault("raw_msgs_per_s", raw["rate"])
            print(f"  raw broker, inflight {inflight}: {raw['rate']:.0f} msg/s delivered "
                  f"(publish {raw['pub_rate']:.0f}/s)", flush=True)
            rows.append(["raw broker (subscriber only counts)", inflight,
                         f"{raw['pub_rate']:.0f}", f"{raw['rate']:.0f}", "-", "-", "-", "-",
                         "1.00", "-", "-", "-", "-"])
            for kind in kinds:
                r = worker_run(args, workdir, kind, inflight)
                figures.setdefault(f"{kind}_msgs_per_s", r["sustained"])
                figures.setdefault(f"{kind}_exactly_once", r["exactly_once"])
                figures.setdefault(f"{kind}_machine_cpu_busy", r["machine_busy"])
                print(f"  worker {kind}, inflight {inflight}: {r['sustained']:.0f} msg/s "
                      f"sustained; {r['detail']}", flush=True)
                cpu = f"{r['cpu_per_1k']:.2f}" if r["cpu_per_1k"] is not None else "?"
                rows.append([f"worker + {kind}", inflight, f"{r['pub_rate']:.0f}",
                             f"{r['rate']:.0f}", f"{r['sustained']:.0f}",
                             f"{r['arr50']:.2f}/{r['arr99']:.2f}",
                             f"{r['lag50']:.2f}/{r['lag99']:.2f}", cpu,
                             f"{r['sustained'] / raw['rate']:.2f}",
                             "yes" if r["exactly_once"] else "NO", r["rss"],
                             f"{100 * r['machine_busy']:.0f} %" if r["machine_busy"] else "?",
                             load_after()])
    print()
    print(h.table(rows, ["run", "inflight", "publish/s", "applied/s", "sustained/s",
                         "arrival lag p50/p99 s", "commit lag p50/p99 s", "worker CPU s/1k",
                         "worker/raw", "exactly once", "worker peak RSS MB",
                         "machine CPU busy", "load"]))
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=2))
    print("\napplied/s: first publish to last commit; sustained/s: between 10 % and 90 % "
          "committed;\nmachine CPU busy: all cores, over that same window;"
          "\nlags measured from publish (wall clock) over a burst, so they include "
          "the queue behind the worker.")
    return 0


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far (Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return (0, 0)
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle, sum(fields))


def machine_busy(samples: list[tuple[float, tuple[int, int]]], lo: float, hi: float
                 ) -> float | None:
    """Share of all cores busy between times lo and hi (the sustained window): with
    every core busy, a second worker has nothing to run on."""
    inside = [j for t, j in samples if lo <= t <= hi]
    if len(inside) < 2 or inside[-1][1] == inside[0][1]:
        return None
    return (inside[-1][0] - inside[0][0]) / (inside[-1][1] - inside[0][1])


def load_after() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
