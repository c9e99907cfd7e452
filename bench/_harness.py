"""Shared pieces of the benchmarks: a private Mosquitto, a throwaway database
(SQLite file or a PostgreSQL database made for the run), seeding through the real
services, the real worker as a subprocess, and simulated piles' messages.

Loopback only; everything started here is stopped by `stop()`/`close()`, and every
wait has a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
FLASK = str(ROOT / ".venv" / "bin" / "flask")
PREFIX = "chargers/v1"
SHANGHAI = timezone(timedelta(hours=8))
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
PG_ADMIN = "postgresql://root@127.0.0.1:5432/test"


def free_port() -> int:
    """A free TCP port on the loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout: float, step: float = 0.05, what: str = "condition"):
    """Poll `cond()` until truthy (returned) or raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; nan when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- broker ---------------------------------------------------------------------------


class Broker:
    """A private anonymous Mosquitto on a free loopback port.

    `max_inflight`: Mosquitto's per-client window of unacknowledged QoS 1 deliveries
    (None = its default, 20). max_queued_messages is raised to 1,000,000: at the
    default (1000) a client that falls behind silently loses QoS 1 messages.
    """

    def __init__(self, workdir: Path, max_inflight: int | None = None):
        if not MOSQUITTO:
            raise SystemExit("mosquitto binary not found")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.max_inflight = max_inflight
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {workdir}/mosquitto.log\n"
            "max_queued_messages 1000000\n"
            + ("log_type all\n" if os.environ.get("BENCH_BROKER_LOG") == "all"
               else "log_type error\nlog_type warning\n")
            + (f"max_inflight_messages {max_inflight}\n" if max_inflight is not None else "")
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 10, what="mosquitto")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# -- database -------------------------------------------------------------------------


class Database:
    """A throwaway database: `sqlite` (a file in workdir) or `postgres` (a database
    `bench_<random>` created on 127.0.0.1:5432 and dropped at close())."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.pg_name = None
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'bench.sqlite'}"
        elif kind == "postgres":
            import psycopg

            self.pg_name = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            self.url = f"postgresql+psycopg://root@127.0.0.1:5432/{self.pg_name}"
        else:
            raise ValueError(kind)
        from sqlalchemy import create_engine

        self.engine = create_engine(self.url)

    @staticmethod
    def postgres_reachable() -> str | None:
        """None when PostgreSQL answers and lets us create a database; else why not."""
        try:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return None
        except Exception as exc:  # noqa: BLE001 - any reason means: skip
            return f"{type(exc).__name__}: {str(exc).strip()[:120]}"

    def close(self) -> None:
        self.engine.dispose()
        if self.pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def scalar(self, sql: str, **params):
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))


def app_env(db_url: str, broker_url: str, workdir: Path, **extra) -> dict:
    """Environment of the app's subprocesses (migrate, seed, worker)."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": db_url,
        "MQTT_URL": broker_url,
        "MQTT_CLIENT_ID": f"chargers-bench-{uuid.uuid4().hex[:6]}",
        "CHARGERS_ENV": "development",
        "EMBEDDED_BROKER_FILE": str(workdir / "broker.json"),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def migrate(env: dict) -> None:
    """`flask --app wsgi db upgrade` on the throwaway database."""
    subprocess.run([FLASK, "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def in_process(db: Database, workdir: Path) -> dict:
    """Migrate the throwaway database and point this process at it (no broker), for the
    profiles that call the app's functions in process; returns the subprocesses'
    environment (seed, setup scripts)."""
    env = app_env(db.url, "mqtt://127.0.0.1:1", workdir)
    migrate(env)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "MQTT_URL", "MQTT_CLIENT_ID")})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return env


SEED = """
import sys
from wsgi import app
from chargers import settings
from chargers.services.devices.alleys import AlleyInput
from chargers.services.onboarding import create_alley
from chargers.services.devices.piles import PileInput, register_pile
slug, ports, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
with app.app_context():
    create_alley(AlleyInput(slug=slug, name="Bench " + slug), settings.alley_defaults(app.config))
    for pid in ids:
        register_pile(None, PileInput(id=pid, alley=slug, ports=ports))
"""


def seed(env: dict, slug: str, pile_ids: list[str], ports: int) -> None:
    """One alley with the piles, through the real services (commits)."""
    subprocess.run([PY, "-c", SEED, slug, str(ports), *pile_ids], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


class Worker:
    """`flask --app wsgi worker` as a subprocess; its log goes to workdir/worker.log."""

    def __init__(self, env: dict, workdir: Path, variant: str = "as-is"):
        self.log_path = workdir / "worker.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        # A variant other than as-is runs the worker with a proposed change patched in.
        cmd = ([FLASK, "--app", "wsgi", "worker"] if variant == "as-is"
               else [PY, str(ROOT / "bench" / "_patched_worker.py"), variant])
        # A measuring variant writes beside the log (bench/_patched_worker.py batch-log).
        env = {"BENCH_BATCH_LOG": str(workdir / "batches.log"), **env}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def wait_subscribed(self, timeout: float = 60) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-2000:]}")
            return "subscribed to" in self.log_path.read_text()
        wait_until(ready, timeout, step=0.1, what="the worker's subscription")

    def cpu_seconds(self) -> float | None:
        """User+system CPU the worker has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def peak_rss_mb(self) -> float | None:
        """The worker's peak resident memory so far (VmHWM), in MB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# -- piles' messages ------------------------------------------------------------------

# A port's statuses in turn: every status message of the latency benchmarks is a change.
STATUS_CYCLE = ("occupied", "charging", "finishing", "available")


def iso(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).isoformat(timespec="milliseconds")


def pile_script(pile_id: str, n: int, ports: int, run: str) -> list[tuple[str, dict]]:
    """`n` (topic, payload) messages of one pile after a boot: charges on its ports
    one after another (status occupied → session start → charging → meters with a
    heartbeat now and then → session stop → finishing → available). Unique ids,
    seq from 0 at the boot. Truncated at n (a start with no stop is allowed)."""
    now = datetime.now(UTC)
    out: list[tuple[str, dict]] = []
    seq = 0

    def add(kind: str, **fields):
        nonlocal seq
        body = {"id": f"{run}-{kind[0]}{seq}", "ts": iso(now), "seq": seq, **fields}
        out.append((f"{PREFIX}/{pile_id}/{kind}", body))
        seq += 1

    add("boot", model="EB-10", firmware="2.4.1", ports=ports, max_power_w=1000)
    cycle = 0
    while len(out) < n:
        port = cycle % ports + 1
        ref = f"{run}-T{cycle}"
        add("status", port=port, status="occupied")
        add("session", event="start", port=port, session=ref, card="C-00042", meter_wh=0)
        add("status", port=port, status="charging")
        energy = 0.0
        for k in range(12):
            energy += 5.3
            add("meter", port=port, session=ref, power_w=318.0, energy_wh=round(energy, 1),
                voltage_v=220.1, current_a=1.45, temp_c=31.5)
            if k % 4 == 3:
                add("heartbeat", rssi=-67)
        add("session", event="stop", port=port, session=ref, energy_wh=round(energy, 1),
            reason="full")
        add("status", port=port, status="finishing")
        add("status", port=port, status="available")
        cycle += 1
    return out[:n]


class Publisher:
    """One paho client publishing QoS 1 as fast as the broker acks (a window of
    `inflight` unacknowledged messages, paho queues the rest). Records each message's
    publish time (wall clock) by (pile, id)."""

    def __init__(self, url_port: int, name: str, inflight: int = 100):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.last_ack = 0.0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", url_port, keepalive=60)
        self.client.loop_start()
        self.sent_at: dict[tuple[str, str], float] = {}

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            self.acked += 1
            self.last_ack = time.time()

    def publish_all(self, messages: list[tuple[str, dict]]) -> None:
        for topic, body in messages:
            pile = topic.split("/")[2]
            self.sent_at[(pile, body["id"])] = time.time()
            self.client.publish(topic, json.dumps(body), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def interleave(per_pile: dict[str, list], owners: int) -> list[list]:
    """Split piles among `owners` publishers; each publisher's list takes its piles'
    messages round-robin (order within a pile kept, so seq still counts up)."""
    groups: list[list[str]] = [[] for _ in range(owners)]
    for i, pid in enumerate(sorted(per_pile)):
        groups[i % owners].append(pid)
    out = []
    for pids in groups:
        lists = [per_pile[p] for p in pids]
        merged = []
        for k in range(max((len(x) for x in lists), default=0)):
            merged.extend(x[k] for x in lists if k < len(x))
        out.append(merged)
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def load_note() -> str:
    """What else the machine was doing: load average and the busiest processes."""
    try:
        la = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        la = ["?"]
    return f"{os.cpu_count()} CPUs, load average {' '.join(la)}"


def python() -> str:
    return f"Python {sys.version.split()[0]}"


# -- the web, as deployed ---------------------------------------------------------------

GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")


class Web:
    """gunicorn with the deployed settings (deploy/gunicorn.conf.py: sync workers),
    `workers` processes, on a free port; the app of wsgi.py plus a trivial JSON route
    `/__bench/trivial` (bench/_web_app.py) to compare against."""

    def __init__(self, env: dict, workdir: Path, workers: int = 2):
        self.port = free_port()
        self.log_path = workdir / "gunicorn.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [GUNICORN, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "--pythonpath", str(ROOT / "bench"), "-w", str(workers),
             "-b", f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null",
             "_web_app:app"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 60, step=0.2, what="gunicorn")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/__bench/trivial", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


SET_STATES = """
import random, sys
from datetime import UTC, datetime, timedelta
from wsgi import app
from chargers.extensions import db
from chargers.models import Pile
random.seed(7)
with app.app_context():
    now = datetime.now(UTC)
    for pile in db.session.query(Pile):
        pile.online, pile.online_since, pile.last_seen_at = True, now, now
        for port in pile.ports:
            port.status = random.choice(["available", "available", "charging", "occupied",
                                         "finishing"])
            port.status_since = port.status_ts = now - timedelta(minutes=random.randint(1, 300))
    db.session.commit()
"""


def set_states(env: dict) -> None:
    """Piles online, ports in a plausible mix of states (commits)."""
    subprocess.run([PY, "-c", SET_STATES], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
