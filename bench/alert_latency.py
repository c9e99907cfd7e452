"""Alert latency: from a pile's `smoke` fault to the automatic cut-off (`stop` and
`disable` for that port) arriving on the pile's cmd topic, under background traffic,
against the raw broker round trip measured in the same run.

    .venv/bin/python bench/alert_latency.py [--faults 50] [--load-rate 200]
        [--load-piles 20] [--db sqlite|postgres] [--inflight N]

Setup as in ingest_throughput.py (private Mosquitto, throwaway database, real worker).
Load piles publish their usual mix (mostly meters) at --load-rate msg/s the whole time.
Five alarm piles (10 ports each) connect as the piles would, subscribe to their cmd
topic and answer each command with an `ack`. Each fault uses a fresh (pile, port), so
each raises a new critical alert; it is cleared (`active: false`) once both commands
arrived, then the next one follows after a random pause (0.2-1.2 s, so faults do not
lock into step with the 1 s command-dispatch job).

Baseline: the same pile client publishes a ping that a plain paho echo client sends
straight back to a topic the pile reads (broker → "backend" → broker → pile), under the
same load. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

ALARM_PILES = [f"A-{i}" for i in range(5)]
ALARM_PORTS = 10


class PileClient:
    """An alarm pile: its own connection, reads its cmd topic, acks every command."""

    def __init__(self, port: int, pile_id: str, echo: bool = False):
        self.pile_id = pile_id
        self.seq = 0
        self.cmds: list[tuple[float, dict]] = []
        self.pongs: dict[str, float] = {}
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=pile_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.will_set(f"{h.PREFIX}/{pile_id}/online", "0", qos=1, retain=True)
        ready = threading.Event()

        def on_connect(c, *a):
            c.subscribe([(f"{h.PREFIX}/{pile_id}/cmd", 1), (f"bench-echo/{pile_id}/pong", 1)])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError(f"{pile_id} not subscribed")

    def _on_message(self, client, userdata, msg):
        now = time.time()
        if msg.topic.endswith("/pong"):
            self.pongs[msg.payload.decode()] = now
            return
        body = json.loads(msg.payload)
        with self.lock:
            self.cmds.append((now, body))
        self.send("ack", cmd=body["id"], result="accepted")

    def send(self, kind: str, **fields) -> float:
        # Faults go out from the main thread, acks from paho's: seq must still count
        # up in publish order, or the backend rightly rejects the late one as a replay.
        with self.send_lock:
            body = {"id": f"{kind[0]}{self.seq}", "ts": h.iso(datetime.now(UTC)),
                    "seq": self.seq, **fields}
            self.seq += 1
            t = time.time()
            self.client.publish(f"{h.PREFIX}/{self.pile_id}/{kind}", json.dumps(body), qos=1)
        return t

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Echo:
    """The baseline 'backend': republishes every ping to the pile's pong topic."""

    def __init__(self, port: int):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-echo",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        ready = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe("bench-echo/+/ping", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: c.publish(
            m.topic.rsplit("/", 1)[0] + "/pong", m.payload, qos=1)
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("echo not subscribed")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Load(threading.Thread):
    """Background pile traffic at a steady rate, from one publisher."""

    def __init__(self, port: int, pile_ids: list[str], rate: float, budget_s: float, ports: int):
        super().__init__(daemon=True)
        per = int(rate * budget_s / len(pile_ids)) + 1
        scripts = {p: h.pile_script(p, per, ports, "load") for p in pile_ids}
        self.messages = h.interleave(scripts, 1)[0]
        self.pub = h.Publisher(port, "bench-load")
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self):
        start = time.monotonic()
        for topic, body in self.messages:
            if self.stop.is_set():
                break
            due = start + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            self.pub.client.publish(topic, json.dumps(body), qos=1)
            self.sent += 1

    def close(self):
        self.stop.set()
        self.join(5)
        self.pub.close()


def _epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp() if value.tzinfo is None else value.timestamp()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", type=int, default=50)
    ap.add_argument("--load-rate", type=float, default=200, help="background msg/s")
    ap.add_argument("--load-piles", type=int, default=20)
    ap.add_argument("--ports", type=int, default=10)
    ap.add_argument("--pings", type=int, default=50)
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--inflight", type=int, default=None,
                    help="Mosquitto max_inflight_messages (default: Mosquitto's, 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variant", default="as-is", choices=["as-is", "wake-dispatch"],
                    help="run the worker with a proposed change patched in (_patched_worker.py)")
    args = ap.parse_args(argv)
    if args.faults > len(ALARM_PILES) * ALARM_PORTS:
        raise SystemExit(f"at most {len(ALARM_PILES) * ALARM_PORTS} faults (fresh ports)")
    if args.db == "postgres" and (why := h.Database.postgres_reachable()):
        print(f"PostgreSQL not reachable at 127.0.0.1:5432 ({why}); nothing measured")
        return 0
    rnd = random.Random(args.seed)
    print(f"alert latency: {args.faults} smoke faults, background {args.load_rate:.0f} msg/s "
          f"from {args.load_piles} piles, {args.db}, worker {args.variant}; {h.python()}; "
          f"{h.load_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chargers-bench-") as tmp:
        wd = Path(tmp)
        broker = h.Broker(wd, max_inflight=args.inflight)
        db = worker = load = echo = None
        piles: dict[str, PileClient] = {}
        try:
            db = h.Database(args.db, wd)
            env = h.app_env(db.url, broker.url, wd)
            h.migrate(env)
            load_ids = [f"L-{i:03d}" for i in range(args.load_piles)]
            h.seed(env, "bench", load_ids + ALARM_PILES, args.ports)
            worker = h.Worker(env, wd, args.variant)
            worker.wait_subscribed()
            for pid in ALARM_PILES:
                piles[pid] = PileClient(broker.port, pid)
                piles[pid].client.publish(f"{h.PREFIX}/{pid}/online", "1", qos=1, retain=True)
                piles[pid].send("boot", model="EB-10", firmware="2.4.1", ports=args.ports,
                                max_power_w=1000)
            load = Load(broker.port, load_ids, args.load_rate, budget_s=600, ports=args.ports)
            load.start()
            echo = Echo(broker.port)
            time.sleep(2)  # let the load settle in

            # -- baseline: raw broker round trip under the same load
            rtt = []
            pinger = piles[ALARM_PILES[0]]
            for i in range(args.pings):
                key = f"p{i}"
                t0 = time.time()
                pinger.client.publish(f"bench-echo/{pinger.pile_id}/ping", key, qos=1)
                try:
                    h.wait_until(lambda k=key: k in pinger.pongs, 10, step=0.001, what="pong")
                    rtt.append(pinger.pongs[key] - t0)
                except TimeoutError:
                    print(f"  ping {i}: no pong in 10 s", file=sys.stderr)
                time.sleep(rnd.uniform(0.02, 0.1))

            # -- faults
            results = []  # (pile, port, t_publish, t_first_cmd, t_both)
            for i in range(args.faults):
                pile = piles[ALARM_PILES[i // ALARM_PORTS]]
                port = i % ALARM_PORTS + 1
                t0 = pile.send("fault", port=port, code="smoke", active=True, value=1.0,
                               detail="bench")

                def both(pile=pile, port=port, t0=t0):
                    with pile.lock:
                        got = {b["action"]: t for t, b in pile.cmds
                               if b.get("port") == port and t >= t0}
                    return got if {"stop", "disable"} <= set(got) else None
                try:
                    got = h.wait_until(both, 20, step=0.002, what=f"cut-off of fault {i}")
                    results.append((pile.pile_id, port, t0, min(got.values()), max(got.values())))
                except TimeoutError as exc:
                    print(f"  fault {i}: {exc}", file=sys.stderr)
                pile.send("fault", port=port, code="smoke", active=False, detail="bench clear")
                time.sleep(rnd.uniform(0.2, 1.2))
            load_sent = load.sent
            load.close()
            load = None

            # -- where the time goes: the commands' own timestamps
            cmd_rows = db.rows("SELECT pile_id, port, action, created_at, sent_at, status "
                               "FROM commands WHERE action IN ('stop', 'disable')")
            created = {}
            sent_at = {}
            for pid, port, _action, c_at, s_at, _status in cmd_rows:
                created.setdefault((pid, port), []).append(_epoch(c_at))
                sent_at.setdefault((pid, port), []).append(_epoch(s_at))
            ingest_part, dispatch_part, deliver_part = [], [], []
            for pid, port, t0, _first, t_both in results:
                c = min(created.get((pid, port), [float("nan")]))
                s = max(x for x in sent_at.get((pid, port), [float("nan")]) if x is not None)
                ingest_part.append(c - t0)
                dispatch_part.append(s - c)
                deliver_part.append(t_both - s)
            alerts = db.scalar("SELECT count(*) FROM alerts WHERE code = 'smoke'")
            statuses = dict(db.rows("SELECT status, count(*) FROM commands GROUP BY status"))
            applied = db.scalar("SELECT count(*) FROM processed_messages")
            rejected = db.rows("SELECT key, count FROM ingest_counters WHERE key LIKE 'rejected%'")
        finally:
            for p in piles.values():
                p.close()
            if echo:
                echo.close()
            if load:
                load.close()
            if worker:
                worker.stop()
            broker.stop()
            if db:
                db.close()

    first = [r[3] - r[2] for r in results]
    full = [r[4] - r[2] for r in results]

    def row(name, xs):
        return [name, len(xs), f"{h.median(xs) * 1000:.0f}", f"{h.pct(xs, 99) * 1000:.0f}",
                f"{max(xs) * 1000:.0f}" if xs else "-"]

    print()
    print(h.table([
        row("raw broker round trip (echo client)", rtt),
        row("fault -> first cut-off command at pile", first),
        row("fault -> stop + disable both at pile", full),
        row("  of which: publish -> command created (ingest)", ingest_part),
        row("  of which: created -> last sent (dispatch job)", dispatch_part),
        row("  of which: sent -> arrived at pile (broker)", deliver_part),
    ], ["path", "n", "p50 ms", "p99 ms", "max ms"]))
    ratio = h.median(full) / h.median(rtt) if rtt and full else float("nan")
    print(f"\nsmoke alerts raised {alerts} for {args.faults} faults; background messages sent "
          f"{load_sent}, messages applied {applied}"
          + f"; commands by status {statuses}; rejections {dict(rejected) or 0}"
          + f"; fault p50 / raw round trip p50 = {ratio:.0f}x")
    print("command created_at/sent_at are the worker's clock (same machine); the dispatch job "
          "runs every 1 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
