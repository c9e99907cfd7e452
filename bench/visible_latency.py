"""Publish → visible: at a steady load, how long from a pile's status message (its
PUBACK'd publish) until the public API (`GET /api/v1/alleys/<slug>`, gunicorn as
deployed) shows the port in that status.

    .venv/bin/python bench/visible_latency.py [--rate 500] [--seconds 20]
        [--piles 20] [--ports 10] [--db postgres|sqlite] [--json PATH]

`make bench` runs it at half the sustained PostgreSQL ingest rate measured just
before. Every message changes one port's status (occupied → charging → finishing →
available → …, ports in turn). A poller asks the API every --poll-ms (default 20 ms;
0 = back to back) with If-None-Match, so an unchanged alley is a 304, and stamps the
first time each port shows each status; a status overtaken before any poll saw it is
not counted (the share counted is printed). Resolution: the poll interval plus one API
round trip. A back-to-back poller is itself a web load of hundreds of requests a
second competing for the same 2 cores as the worker; web_rps.py measures that load on
its own. Nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

CYCLE = h.STATUS_CYCLE


class Poller(threading.Thread):
    def __init__(self, port: int, slug: str, interval_s: float = 0.0):
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.path = f"/api/v1/alleys/{slug}"
        self.stop = threading.Event()
        self.first_seen: dict[tuple[str, int, int], float] = {}  # (pile, port, k) → t
        self.expect: dict[tuple[str, int], list] = {}  # (pile, port) → [(k, status)]
        self.lock = threading.Lock()
        self.polls = 0

    def run(self):
        etag = None
        while not self.stop.wait(self.interval_s):
            try:
                self.conn.request("GET", self.path, headers={"If-None-Match": etag} if etag else {})
                r = self.conn.getresponse()
                body = r.read()
            except OSError:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.conn.port, timeout=10)
                continue
            now = time.time()
            self.polls += 1
            if r.status != 200:
                continue
            etag = r.headers.get("ETag")
            data = json.loads(body)
            with self.lock:
                for pile in data["piles"]:
                    for p in pile["ports"]:
                        for k, status in self.expect.get((pile["id"], p["port"]), ()):
                            if status == p["status"]:
                                self.first_seen.setdefault((pile["id"], p["port"], k), now)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500, help="messages per second")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--piles", type=int, default=20)
    ap.add_argument("--ports", type=int, default=10)
    ap.add_argument("--db", default="postgres", choices=["postgres", "sqlite"])
    ap.add_argument("--poll-ms", type=float, default=20, help="API poll interval (0: back to back)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--variant", default="as-is",
                    help="run the worker with a variant of bench/_patched_worker.py (batch-log: "
                         "every batch's start, length and size into $BENCH_BATCH_LOG)")
    args = ap.parse_args(argv)
    if args.db == "postgres" and h.Database.postgres_reachable():
        print("PostgreSQL not reachable: using SQLite")
        args.db = "sqlite"
    print(f"publish → visible in the API: {args.rate:.0f} msg/s for {args.seconds:.0f} s, "
          f"{args.piles} piles x {args.ports} ports, {args.db}, API polled every "
          f"{args.poll_ms:.0f} ms; {h.python()}; {h.load_note()}",
          flush=True)
    pile_ids = [f"V-{i:03d}" for i in range(args.piles)]
    with tempfile.TemporaryDirectory(prefix="chargers-bench-vis-") as tmp:
        wd = Path(tmp)
        broker = h.Broker(wd / "broker", max_inflight=1000)
        db = worker = web = poller = pub = None
        try:
            db = h.Database(args.db, wd)
            env = h.app_env(db.url, broker.url, wd)
            h.migrate(env)
            h.seed(env, "vis", pile_ids, args.ports)
            h.set_states(env)
            worker = h.Worker(env, wd, args.variant)
            worker.wait_subscribed()
            web = h.Web(env, wd, 2)
            poller = Poller(web.port, "vis", args.poll_ms / 1000)
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="vis-pub",
                              protocol=mqtt.MQTTv311)
            pub.max_inflight_messages_set(1000)
            pub.max_queued_messages_set(0)
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            acked: dict[int, float] = {}
            pub.on_publish = lambda c, u, mid, rc, props: acked.setdefault(mid, time.time())
            poller.start()
            n = int(args.rate * args.seconds)
            ports = [(p, q) for p in pile_ids for q in range(1, args.ports + 1)]
            step = {pp: 0 for pp in ports}
            sent: list[tuple[tuple[str, int, int], float, int]] = []
            t0 = time.time()
            for i in range(n):
                target = t0 + i / args.rate
                delay = target - time.time()
                if delay > 0:
                    time.sleep(delay)
                pile, port = ports[i % len(ports)]
                k = step[(pile, port)]
                step[(pile, port)] = k + 1
                status = CYCLE[k % len(CYCLE)]
                with poller.lock:
                    poller.expect.setdefault((pile, port), []).append((k, status))
                body = {"id": f"v{i}", "ts": h.iso(datetime.now(UTC)), "port": port,
                        "status": status}
                info = pub.publish(f"{h.PREFIX}/{pile}/status", json.dumps(body), qos=1)
                sent.append(((pile, port, k), time.time(), info.mid))
            time.sleep(3)
            poller.stop.set()
            poller.join(10)
            # k = 0 is not counted: the port may have shown that status already
            lat = [(poller.first_seen[key] - t) * 1000 for key, t, _ in sent
                   if key in poller.first_seen and key[2] > 0]
            achieved = n / (sent[-1][1] - t0) if sent else 0
        finally:
            if poller:
                poller.stop.set()
            if pub:
                pub.disconnect()
                pub.loop_stop()
            for thing in (web, worker):
                if thing:
                    thing.stop()
            broker.stop()
            if db:
                db.close()
    n = sum(1 for key, _, _ in sent if key[2] > 0)
    res = {"visible_p50_ms": h.median(lat), "visible_p99_ms": h.pct(lat, 99),
           "rate": achieved, "counted": len(lat), "published": n, "polls": poller.polls,
           "poll_ms": args.poll_ms}
    print(f"  {len(lat)} of {n} status changes seen ({poller.polls} API polls); publish → "
          f"visible p50 {res['visible_p50_ms']:.0f} ms, p99 {res['visible_p99_ms']:.0f} ms "
          f"at {achieved:.0f} msg/s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
