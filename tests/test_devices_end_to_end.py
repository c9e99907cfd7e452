"""The `make run` topology with nothing mocked: the embedded broker and the worker as
processes, a pile publishing; the worker is SIGKILLed mid-stream and restarted.
Every message the broker acknowledged to the pile is applied exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import ProcessedMessage
from tests.device_clients import Peer, wait_until
from tests.embedded_broker import embedded_broker

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "chargers/v1"
N = 300


def processed(pile_id: str) -> int:
    db.session.remove()  # a fresh look at what the worker committed
    return db.session.scalar(select(func.count()).select_from(ProcessedMessage)
                             .where(ProcessedMessage.pile_id == pile_id))


def test_worker_killed_mid_stream_loses_and_doubles_nothing(app, app_config, alley_with_pile, tmp_path,
                                                           app_ctx):
    info_file = Path(app_config["EMBEDDED_BROKER_FILE"])
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "MQTT_URL": "",
           "EMBEDDED_BROKER_FILE": str(info_file)}

    def start_worker(n: int) -> subprocess.Popen:
        log = open(tmp_path / f"worker{n}.log", "w")  # handed to the child; closed with it
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)

    with embedded_broker(env["DATABASE_URL"], info_file, tmp_path / "broker.log") as broker:
        worker = start_worker(1)
        pile = Peer(broker["port"], "P-1", "P-1", alley_with_pile)
        try:
            assert pile.connect()
            t0 = datetime.now(timezone(timedelta(hours=8)))

            def send(n: int, kind: str, **fields):
                ts = (t0 + timedelta(milliseconds=n)).isoformat()
                body = {"id": f"e{n}", "ts": ts, "seq": n, **fields}
                pile.publish(f"{PREFIX}/P-1/{kind}", json.dumps(body))

            send(0, "boot", model="EB", firmware="1", ports=4, max_power_w=1000)
            done = threading.Event()

            def stream():
                for n in range(1, N):
                    send(n, "heartbeat")
                done.set()

            publisher = threading.Thread(target=stream, daemon=True)
            publisher.start()
            wait_until(lambda: processed("P-1") >= 50, 60, "the worker to apply some messages")
            worker.kill()  # mid-stream, between batches or inside one
            worker.wait(10)
            assert done.wait(60), "the pile could not publish while the worker was down"
            worker = start_worker(2)
            wait_until(lambda: processed("P-1") >= N, 60, f"all {N} messages applied")
            assert processed("P-1") == N
            ids = db.session.scalars(select(ProcessedMessage.msg_id)
                                     .where(ProcessedMessage.pile_id == "P-1")).all()
            assert sorted(ids) == sorted(f"e{n}" for n in range(N))
        finally:
            pile.close()
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(20)


def test_worker_follows_a_restarted_embedded_broker(app, app_config, alley_with_pile, tmp_path,
                                                    app_ctx):
    """Whatever CHARGERS_TEST_BROKER says: the embedded broker restarts (SIGTERM)
    with a new backend password; the worker takes it from the broker file, comes
    back on the same port and applies what the pile sends after the restart."""
    from tests.brokers import make_broker
    from tests.ingest_support import Pile, Worker, poll

    broker = make_broker("embedded", tmp_path / "broker", app_config["SQLALCHEMY_DATABASE_URI"],
                         Path(app_config["EMBEDDED_BROKER_FILE"]), client_id="backend-follow")
    broker.start()
    worker = Worker(app_config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path)
    pile = None
    try:
        worker.start()
        worker.wait_log("subscribed to")
        pile = Pile(broker, "P-1", alley_with_pile)
        pile.send("heartbeat")
        poll(lambda: processed("P-1") == 1, what="the first message")
        old_login = broker.backend_login
        broker.restart("term")
        assert broker.backend_login != old_login
        after = [pile.send("heartbeat")["id"] for _ in range(5)]
        poll(lambda: processed("P-1") == 6, timeout=40, what="the messages after the restart")
        assert set(after) <= set(db.session.scalars(select(ProcessedMessage.msg_id)))
        assert "using its new backend login" in worker.output()
    finally:
        if pile is not None:
            pile.close()
        worker.stop("term")
        broker.stop()
