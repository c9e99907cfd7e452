"""The alley's power budget on a winter evening (issue 24), with the real worker.

    .venv/bin/python bench/budget_sim.py [--speed 300] [--db postgres|sqlite]

16 simulated v1.1 piles of 10 ports (chargers/simulator.py: they ask `authorize`, wait
for the answer, obey `queued` / `start` and their `max_wh` / `max_minutes`) hang on a
20 kW feeder limit (10 % margin: admission aims at 18 kW). 160 households come home
between 18:30 and 20:30 (a triangular peak at 19:15), each plugs into a free port and
presents its card; healthy lithium (62 %) and lead-acid (38 %) packs of 300-1,100 Wh
drawing 300-450 W; a queued resident waits all night; a charged bike stays plugged.
Simulated time runs `speed` times the wall clock from 18:00 to 07:00; a pile reads
each charging port every 10 simulated minutes (every 60 s compressed 300 times would
flood the worker far beyond an alley's real rate), and the backend's budget settings
are scaled to that reading interval. Meanwhile a
thousand other piles of another alley send their normal traffic (a heartbeat and five
meter readings each per real minute, ~100 messages/s) to the same worker.

Into bench/results.json (merged):
- `budget_over_limit_s`: simulated seconds the piles' summed power (their own readings,
  sampled every simulated minute) stayed above the 20 kW limit;
- `budget_queue_p90_s`, `budget_queue_max_s`: simulated seconds from plugging in to
  power, over all 160 households (0 for those accepted at once);
- `budget_served_share`: households whose charge ended `full` before 07:00;
- `authorize_p50_ms`, `authorize_p99_ms`: wall-clock time from a pile's `authorize`
  publish to the answer it received.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (  # noqa: E402
    PREFIX,
    PY,
    ROOT,
    Broker,
    Database,
    Worker,
    app_env,
    iso,
    migrate,
    pct,
    seed,
)
from chargers.broker.mosquitto import MAX_INFLIGHT_MESSAGES  # noqa: E402
from chargers.mqtt_settings import BrokerAddress  # noqa: E402
from chargers.services.demo.cards import anonymous as anonymous_cards  # noqa: E402
from chargers.simulator import Behaviour, CardBox, SimPile  # noqa: E402

PILES, PORTS, HOUSEHOLDS = 16, 10, 160
LIMIT_W, MARGIN_PCT = 20_000, 10
BACKGROUND_PILES = 1000
START_H, END_H = 18.0, 31.0  # 18:00 to 07:00 the next morning, simulated
ARRIVE = (18.5, 20.5, 19.25)  # triangular: from, to, peak (hours)

SETUP = """
import sys
from datetime import UTC, datetime
from wsgi import app
from chargers.services.billing import accounts
from chargers.services import users
from chargers.services.budget import feeder
slug, limit, margin, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
now = datetime.now(UTC)
with app.app_context():
    admin = users.create_user("bench", "bench-password-123", "admin")
    feeder.set_limit(admin, slug, {"feeder_limit_w": limit, "feeder_margin_w": margin}, now)
    for i in range(n):
        acc = accounts.create_account(admin, accounts.AccountInput(
            alley=slug, cards=[f"H{i:03d}"], kind="prepaid", household=f"{i}号"), now)
        accounts.top_up(admin, acc.id, 20_000, "cash", None, now)
"""


class _Card(CardBox):
    def __init__(self):
        super().__init__(anonymous_cards())
        self.card = ""

    def take(self, rng):
        return self.card


class BenchPile(SimPile):
    """A simulated v1.1 pile whose residents the bench brings (one each, for the night),
    recording when each was queued, started and stopped (simulated seconds)."""

    def setup(self):
        self.box = _Card()
        self.cards = self.box
        self.log: dict[str, dict] = {}
        self.port_card: dict[int, str] = {}

    def free_ports(self) -> list[int]:
        return [p.number for p in self.state.ports
                if p.status == "available" and p.number not in self.port_card]

    def present(self, port_no: int, card: str, now: float) -> None:
        with self.lock:
            port = self.state.ports[port_no - 1]
            self.port_card[port_no] = card
            self.log[card] = {"arrived": now}
            self._status(port, "occupied")
            self.box.card = card
            self._ask(port, now)

    def _answered(self, port, cmd, now):
        card = self.port_card.get(port.number)
        if card and cmd.get("result") == "queued":
            self.log[card].setdefault("queued", now)
        if card and cmd.get("result") == "rejected":
            self.log[card]["rejected"] = cmd.get("reason")
        super()._answered(port, cmd, now)

    def _start_session(self, port, now, max_wh=None, max_minutes=None):
        super()._start_session(port, now, max_wh, max_minutes)
        card = self.port_card.get(port.number)
        if card:
            self.log[card]["started"] = now

    def _stop_session(self, port, reason):
        card = self.port_card.get(port.number)
        if card and port.session is not None:
            self.log[card].update(ended=self.clock(), reason=reason)
        super()._stop_session(port, reason)

    def _tick_port(self, port, now):
        if port.status in ("available", "finishing") and port.session is None:
            return  # nobody else comes; a charged bike stays plugged
        super()._tick_port(port, now)


class Background(threading.Thread):
    """A thousand piles' normal traffic: each a heartbeat and five meter readings a
    minute (wall clock), spread evenly."""

    def __init__(self, port: int, ids: list[str]):
        super().__init__(daemon=True)
        self.ids = ids
        self.stop_flag = threading.Event()
        self.sent = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bg",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def run(self) -> None:
        per_min = len(self.ids) * 6
        gap = 60.0 / per_min
        t0, n = time.monotonic(), 0
        while not self.stop_flag.is_set():
            pile = self.ids[n % len(self.ids)]
            k = n // len(self.ids)
            now = iso(datetime.now(UTC))
            if k % 6 == 0:
                topic, body = "heartbeat", {"id": f"h{n}", "ts": now, "rssi": -60}
            else:
                port = k % 6
                body = {"id": f"m{n}", "ts": now, "port": port, "session": f"{pile}-{port}",
                        "power_w": 350.0, "energy_wh": float(k)}
                topic = "meter"
            self.client.publish(f"{PREFIX}/{pile}/{topic}", json.dumps(body), qos=1)
            self.sent += 1
            n += 1
            wait = t0 + n * gap - time.monotonic()
            if wait > 0:
                self.stop_flag.wait(wait)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", type=float, default=300.0)
    ap.add_argument("--db", default="postgres", choices=("postgres", "sqlite"))
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (worker log)")
    # A reading every 60 s, compressed 300 times, would be 160 ports × 5 readings a
    # second: far above an alley's real rate (2.7 a second). One every simulated
    # 10 minutes keeps the worker's load near a real evening's.
    ap.add_argument("--meter-every-s", type=float, default=600.0)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    ap.add_argument("--inflight", type=int, default=MAX_INFLIGHT_MESSAGES,
                    help="Mosquitto max_inflight_messages (default: the product's, as "
                         "deploy/mosquitto/chargers.conf and the embedded broker set it)")
    ap.add_argument("--variant", default="as-is",
                    help="the worker with a proposed change (bench/_patched_worker.py)")
    args = ap.parse_args(argv)
    if args.db == "postgres" and Database.postgres_reachable() is not None:
        print("PostgreSQL not reachable: SQLite instead", flush=True)
        args.db = "sqlite"
    started = time.time()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="budget-bench-"))
    broker = Broker(work / "broker", max_inflight=args.inflight)
    db = Database(args.db, work)
    reading_s = args.meter_every_s / args.speed
    env = app_env(db.url, broker.url, work,
                  BUDGET_READING_S=max(1, round(reading_s)),
                  BUDGET_READING_FRESH_S=max(2, round(3 * reading_s)),
                  BUDGET_ADMIT_TTL_S=max(2, round(3 * reading_s)),
                  BUDGET_MARGIN_PCT=MARGIN_PCT)
    worker = background = None
    piles: list[BenchPile] = []
    stop_ticks = threading.Event()
    try:
        migrate(env)
        ids = [f"B{i:02d}" for i in range(1, PILES + 1)]
        others = [f"C{i:04d}" for i in range(BACKGROUND_PILES)]
        seed(env, "evening", ids, PORTS)
        seed(env, "city", others, 10)
        subprocess.run([PY, "-c", SETUP, "evening", str(LIMIT_W), str(LIMIT_W * MARGIN_PCT // 100),
                        str(HOUSEHOLDS)], cwd=ROOT, env=env, check=True, timeout=300)
        worker = Worker(env, work, variant=args.variant)
        worker.wait_subscribed()
        print(f"setup {time.time() - started:.0f} s; evening at {args.speed:.0f}x", flush=True)
        t0 = time.monotonic()
        worker_cpu0, bench_cpu0 = worker.cpu_seconds() or 0.0, sum(os.times()[:2])

        def clock() -> float:  # simulated seconds since 18:00
            return (time.monotonic() - t0) * args.speed

        behaviour = Behaviour(mean_idle_s=1e12, mean_stay_s=1e12, early_leave=0.0,
                              meter_every_s=args.meter_every_s,
                              fault_rate=0.0, need_wh=(300, 1100), power_w=(300, 450),
                              battery_mix=(("lithium", 0.62), ("lead_acid", 0.38)),
                              v11_share=1.0, v11_features=("config", "authorize", "start"))
        address = BrokerAddress("127.0.0.1", broker.port)
        for pid in ids:
            p = BenchPile(pid, PORTS, "-", address, PREFIX, behaviour, clock,
                          random.Random(rng.random()), None, behaviour.v11_features)
            p.setup()
            piles.append(p)
            p.start()
        for p in piles:
            if not p.connected.wait(20):
                raise SystemExit(f"{p.id} did not connect")
        background = Background(broker.port, others)
        background.start()

        def ticks():
            while not stop_ticks.is_set():
                for p in piles:
                    try:
                        p.tick()
                    except Exception as exc:  # noqa: BLE001 - counted, not fatal
                        print(f"{p.id}: tick failed: {exc!r}", flush=True)
                stop_ticks.wait(0.01)

        ticker = threading.Thread(target=ticks, daemon=True)
        ticker.start()
        arrivals = sorted((rng.triangular(*ARRIVE[:2], ARRIVE[2]) - START_H) * 3600
                          for _ in range(HOUSEHOLDS))
        cards = [f"H{i:03d}" for i in range(HOUSEHOLDS)]
        end = (END_H - START_H) * 3600
        over_s, next_sample, peak, k = 0.0, 0.0, 0.0, 0
        loads: list[float] = []
        while clock() < end:
            now = clock()
            while k < len(arrivals) and arrivals[k] <= now:
                free = [(p, n) for p in piles for n in p.free_ports()]
                if free:
                    p, n = rng.choice(free)
                    p.present(n, cards[k], now)
                k += 1
            if now >= next_sample:  # every simulated minute: the piles' own readings
                load = sum(port.power_w for p in piles for port in p.state.ports
                           if port.session is not None)
                loads.append(load)
                peak = max(peak, load)
                if load > LIMIT_W:
                    over_s += 60
                next_sample += 60
            time.sleep(0.005)
        stop_ticks.set()
        ticker.join(5)
        log = {c: v for p in piles for c, v in p.log.items()}
        waits = [v.get("started", end) - v["arrived"] for v in log.values()]
        queued = sum(1 for v in log.values() if "queued" in v)
        full = sum(1 for v in log.values() if v.get("reason") == "full")
        lat = [ms for p in piles for ms, _r in p.auth_latencies]
        results = {
            "budget_over_limit_s": round(over_s),
            "budget_queue_p90_s": round(pct(waits, 90)),
            "budget_queue_max_s": round(max(waits)),
            "budget_served_share": round(full / HOUSEHOLDS, 3),
            "authorize_p50_ms": round(pct(lat, 50), 1),
            "authorize_p99_ms": round(pct(lat, 99), 1),
        }
        wall = max(1e-9, time.monotonic() - t0)
        bg_rate = background.sent / wall
        # How busy the two processes were (a core each at most, on a 2-core machine).
        worker_cpu = ((worker.cpu_seconds() or 0.0) - worker_cpu0) / wall
        bench_cpu = (sum(os.times()[:2]) - bench_cpu0) / wall
        # The worker's own part: the authorize's arrival to the answer's publish.
        # ... split at the start of its batch (answered_at is the batch's `now`): the
        # wait in the inbox, then the batch, its commit and the publish.
        rows = [r for r in db.rows(
            "SELECT a.received_at, a.answered_at, c.sent_at, a.message_id FROM "
            "authorizations a JOIN commands c ON c.id = a.command_id "
            "WHERE c.sent_at IS NOT NULL")
            if all(isinstance(t, datetime) for t in r[:3])]
        inside = [(sent - got).total_seconds() * 1000 for got, _b, sent, _m in rows]
        waited = [(began - got).total_seconds() * 1000 for got, began, _s, _m in rows]
        handled = [(sent - began).total_seconds() * 1000 for _g, began, sent, _m in rows]
        # ... and the two legs outside it (one machine, one clock): the pile's publish to
        # the worker's paho callback, the worker's publish to the pile hearing it.
        walls = {ref: (out, back) for p in piles for ref, out, back in p.auth_walls}
        legs = [((got.timestamp() - walls[m][0]) * 1000, (walls[m][1] - sent.timestamp()) * 1000)
                for got, _b, sent, m in rows if m in walls]
        notes = {
            "db": args.db, "inflight": args.inflight, "variant": args.variant,
            "speed": args.speed, "meter_every_sim_s": args.meter_every_s,
            "households": len(log),
            "queued": queued, "answers": len(lat),
            "rejected": sum(1 for v in log.values() if "rejected" in v),
            "offline_starts": sum(p.offline_starts for p in piles),
            "stops_by_reason": _count(v.get("reason", "charging at 07:00") for v in log.values()),
            "peak_w_sampled": round(peak), "limit_w": LIMIT_W, "margin_pct": MARGIN_PCT,
            "background_msgs_per_s": round(bg_rate, 1),
            "worker_cpu_cores": round(worker_cpu, 2), "bench_cpu_cores": round(bench_cpu, 2),
            "worker_arrival_to_publish_p50_ms": round(pct(inside, 50), 1) if inside else None,
            "worker_arrival_to_publish_p99_ms": round(pct(inside, 99), 1) if inside else None,
            "worker_inbox_wait_p50_ms": round(pct(waited, 50), 1) if waited else None,
            "worker_inbox_wait_p99_ms": round(pct(waited, 99), 1) if waited else None,
            "worker_batch_to_publish_p50_ms": round(pct(handled, 50), 1) if handled else None,
            "worker_batch_to_publish_p99_ms": round(pct(handled, 99), 1) if handled else None,
            "pile_to_worker_p50_ms": round(pct([a for a, _ in legs], 50), 1) if legs else None,
            "pile_to_worker_p99_ms": round(pct([a for a, _ in legs], 99), 1) if legs else None,
            "worker_to_pile_p50_ms": round(pct([b for _, b in legs], 50), 1) if legs else None,
            "worker_to_pile_p99_ms": round(pct([b for _, b in legs], 99), 1) if legs else None,
            "over_limit_note": "simulated seconds; readings sampled every simulated minute",
            "minutes": round((time.time() - started) / 60, 1),
        }
        print(json.dumps({**results, "_notes_budget": notes}, indent=2), flush=True)
        out = Path(args.json)
        merged = json.loads(out.read_text()) if out.exists() and out.read_text().strip() else {}
        merged.update(results)
        merged.setdefault("_notes", {})["budget"] = notes
        out.write_text(json.dumps(merged, indent=2) + "\n")
        return 0
    finally:
        stop_ticks.set()
        if background is not None:
            background.stop()
        for p in piles:
            try:
                p.stop(announce=False, timeout=1)
            except Exception:  # noqa: BLE001
                pass
        if worker is not None:
            worker.stop()
            if "Traceback" in worker.log_path.read_text():
                print("worker log has a traceback:\n" + worker.log_path.read_text()[-3000:])
        broker.stop()
        db.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _count(items) -> dict:
    out: dict = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
