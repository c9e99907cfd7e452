"""The worker end to end: a real broker (a private Mosquitto, or the embedded
broker: tests/brokers.py, CHARGERS_TEST_BROKER), the worker as a real subprocess
(`flask --app wsgi worker`), piles as paho clients logged in with their secrets,
speaking the protocol. The oracle: every message the broker acknowledged to a
pile is in the database exactly once."""

from __future__ import annotations

import json
import signal

import pytest
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import (
    ChargingSession,
    IngestCounter,
    MeterSample,
    Pile,
    ProcessedMessage,
    Rejection,
)
from tests.conftest import bearer
from tests.ingest_support import PREFIX, Worker, body, poll
from tests.ingest_support import Pile as PileClient


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def counter(key: str) -> int:
    row = db.session.get(IngestCounter, key)
    return row.count if row else 0


@pytest.fixture
def pile(broker, alley_with_pile):
    p = PileClient(broker, "P-1", alley_with_pile)
    yield p
    try:
        p.close()
    except Exception:
        pass


def test_statuses_and_one_charge_reach_the_api(app, worker, pile, client, admin):
    pile.online()
    pile.send("boot", seq=0, ports=4)
    pile.send("status", seq=1, port=3, status="occupied")
    pile.send("session", seq=2, event="start", port=3, session="T1001", card="C-42", meter_wh=0)
    pile.send("status", seq=3, port=3, status="charging")
    for i in range(1, 4):
        pile.send("meter", seq=3 + i, port=3, session="T1001", power_w=318.0, energy_wh=5.0 * i)
    stop = pile.send("session", seq=7, event="stop", port=3, session="T1001", energy_wh=16.0,
                     reason="full")
    pile.send("status", seq=8, port=3, status="finishing")
    # the same stop again (a lost PUBACK makes the pile resend its id)
    pile.publish_raw(pile.topic("session"), json.dumps(stop).encode())
    # another charge whose stop arrives before its start
    pile.send("session", seq=9, event="stop", port=2, session="T1002", energy_wh=8.0,
              reason="unplugged")
    pile.send("session", seq=10, event="start", port=2, session="T1002", meter_wh=16.0)

    with app.app_context():
        poll(lambda: counter("duplicate") == 1 and counter("accepted:session") == 4,
             what="all messages applied")
    alley = client.get("/api/v1/alleys/lane").json
    [p] = alley["piles"]
    assert p["online"] is True
    assert {x["port"]: x["status"] for x in p["ports"]}[3] == "finishing"
    rows = client.get("/api/v1/sessions?pile=P-1", headers=bearer(admin[1])).json
    by_ref = {r["session"]: r for r in rows}
    assert len(rows) == 2
    assert (by_ref["T1001"]["energy_wh"], by_ref["T1001"]["status"]) == (16.0, "stopped")
    assert (by_ref["T1002"]["energy_wh"], by_ref["T1002"]["status"]) == (8.0, "stopped")
    with app.app_context():
        assert count(MeterSample) == 3
        assert count(Rejection) == 0


def test_each_bad_input_is_rejected_counted_and_harmless(worker, pile, broker, app_ctx):
    pile.online()
    poll(lambda: db.session.get(Pile, "P-1").online, what="pile online")
    bad = [
        (f"{PREFIX}/P-1/status/extra", b"{}"),                          # bad_topic
        (f"{PREFIX}/P-1/teleport", json.dumps(body("status")).encode()),  # unknown_kind
        (f"{PREFIX}/GHOST/status", json.dumps(body("status")).encode()),  # unknown_pile
        (f"{PREFIX}/P-1/status", b"{" + b" " * 10_000 + b"}"),           # oversized
        (f"{PREFIX}/P-1/status", b"\xff\xfe\x00"),                       # malformed
        (f"{PREFIX}/P-1/meter", b'{"id":"n","ts":"2026-11-27T08:00:00Z","power_w":NaN}'),  # malformed
        (f"{PREFIX}/P-1/status", json.dumps(body("status", status="on_fire")).encode()),   # invalid
        (f"{PREFIX}/P-1/status", json.dumps(body("status", port=9)).encode()),  # port_out_of_range
    ]
    for topic, payload in bad:
        pile.publish_raw(topic, payload)
    pile.send("status", port=2, status="charging")
    poll(lambda: db.session.scalar(select(Pile).where(Pile.id == "P-1")).ports[1].status == "charging",
         what="the valid message after the bad ones")
    # Where the broker has an ACL (the embedded one), P-1 cannot publish on GHOST's
    # topic at all: the broker drops it, so the backend never sees an unknown pile
    # (tests/test_devices_broker.py::test_acl; the handlers' tests cover the reason).
    for reason, n in {"bad_topic": 1, "unknown_kind": 1, "unknown_pile": 0 if broker.acl else 1,
                      "oversized": 1, "malformed": 2, "invalid": 1, "port_out_of_range": 1}.items():
        assert counter(f"rejected:{reason}") == n, reason
    assert count(ProcessedMessage) == 1  # only the valid status
    assert [p.status for p in db.session.get(Pile, "P-1").ports] == [
        "unavailable", "charging", "unavailable", "unavailable"]


def test_last_will_marks_the_pile_offline(app, worker, pile, client):
    pile.online()
    poll(lambda: client.get("/api/v1/alleys/lane").json["piles"][0]["online"], what="online")
    pile.vanish()
    poll(lambda: not client.get("/api/v1/alleys/lane").json["piles"][0]["online"],
         what="offline by last will")
    with app.app_context():
        assert db.session.get(Pile, "P-1").offline_reason == "will"


def test_messages_sent_while_the_worker_is_down_all_arrive(worker, pile, app_ctx):
    assert worker.stop("term") == 0
    sent = [pile.send("meter", session="T7", energy_wh=float(i)) for i in range(200)]
    worker.start()
    worker.wait_log("session_present=1")
    poll(lambda: count(MeterSample) >= 200, what="the backlog")
    assert count(MeterSample) == 200
    assert count(ProcessedMessage) == len({m["id"] for m in sent}) == 200


def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(worker, pile, app_ctx):
    infos = []
    ids = []
    for i in range(600):
        m = body("meter", session="K", energy_wh=float(i))
        ids.append(m["id"])
        infos.append(pile.publish_raw(pile.topic("meter"), json.dumps(m).encode(), wait=False))
        if i == 150:
            poll(lambda: count(MeterSample) > 20, what="the worker to be mid-stream")
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(10)
    for info in infos:
        info.wait_for_publish(10)
    acked = [m for m, info in zip(ids, infos, strict=True) if info.is_published()]
    assert len(acked) == 600
    worker.start()
    poll(lambda: count(ProcessedMessage) >= 600, timeout=60, what="every acked message")
    stored = db.session.scalars(select(ProcessedMessage.msg_id)).all()
    assert sorted(stored) == sorted(acked)  # each exactly once
    assert count(MeterSample) == 600
    assert count(ChargingSession) == 1


@pytest.mark.parametrize("sig", ["term", "kill"])
def test_broker_restart_is_survived(worker, pile, broker, sig, app_ctx):
    """A graceful restart and a crash of the broker: the worker and the
    pile reconnect, the worker resubscribes, nothing acknowledged is lost."""
    first = [pile.send("meter", session="B", energy_wh=float(i))["id"] for i in range(50)]
    poll(lambda: count(MeterSample) == 50, what="first half")
    broker.restart(sig)
    if sig == "kill":
        # A crash may lose up to a second of Mosquitto's state (autosave_interval 1),
        # the worker's fresh subscription among it: send once it has resubscribed.
        poll(lambda: worker.output().count("subscribed to") >= 2, timeout=40, what="resubscribed")
    else:
        worker.wait_log("connected (session_present=1)")  # before the restart too; check count below
    second = [pile.send("meter", session="B", energy_wh=float(50 + i))["id"] for i in range(50)]
    poll(lambda: count(MeterSample) >= 100, timeout=40, what="second half after restart")
    assert sorted(db.session.scalars(select(ProcessedMessage.msg_id)).all()) == sorted(first + second)
    assert worker.output().count("connected (session_present=") >= 2


def test_mqtt5_session_with_expiry_keeps_the_backlog(app, alley_with_pile, broker, tmp_path,
                                                     app_ctx):
    """MQTT 5: clean_start=False plus a session expiry (paho's default clean start
    would drop the session, paho issue #877)."""
    if not broker.mqtt5:
        pytest.skip("the embedded broker (amqtt 0.12.1) has no MQTT 5, as the README says; "
                    "it does not even answer a v5 CONNECT")
    w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path, MQTT_PROTOCOL="5")
    w.start()
    try:
        w.wait_log("subscribed to")
        assert w.stop("term") == 0
        p = PileClient(broker, "P-1", alley_with_pile)
        sent = [p.send("heartbeat")["id"] for _ in range(50)]
        p.close()
        w.start()
        w.wait_log("session_present=1")
        poll(lambda: count(ProcessedMessage) >= 50, what="the v5 backlog")
        assert sorted(db.session.scalars(select(ProcessedMessage.msg_id)).all()) == sorted(sent)
    finally:
        w.stop("term")


def test_broker_down_when_the_worker_starts(app, alley_with_pile, broker, tmp_path, app_ctx):
    broker.stop("term")
    w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path)
    w.start()
    try:
        # With MQTT_URL the worker retries the address; with the embedded broker it
        # waits for the file the broker writes when it starts.
        w.wait_log("connecting to" if broker.kind == "mosquitto" else "waiting for the embedded broker")
        assert w.proc.poll() is None  # still running, retrying
        broker.start()
        w.wait_log("subscribed to", timeout=40)
        p = PileClient(broker, "P-1", alley_with_pile)
        p.send("status", port=4, status="charging")
        p.close()
        poll(lambda: db.session.get(Pile, "P-1").ports[3].status == "charging", what="status")
    finally:
        assert w.stop("term") == 0


def test_backlog_across_a_broker_restart(worker, pile, broker, app_ctx):
    """Sent while the worker is away, then the broker restarts. Mosquitto
    (`persistence true`) keeps the backlog; the embedded broker keeps sessions in
    memory and loses it, as documented, and the pile's `seq` shows the hole."""
    from chargers.models import SeqGap

    pile.send("boot", seq=0)
    poll(lambda: count(ProcessedMessage) == 1, what="the boot")
    assert worker.stop("term") == 0
    away = [pile.send("heartbeat", seq=i)["id"] for i in range(1, 21)]
    broker.restart("term")  # Mosquitto saves its state on SIGTERM
    worker.start()
    worker.wait_log("subscribed to")
    pile.send("heartbeat", seq=21)
    poll(lambda: count(ProcessedMessage) >= (22 if broker.persistent else 2), what="what was kept")
    stored = set(db.session.scalars(select(ProcessedMessage.msg_id)).all())
    if broker.persistent:
        assert set(away) <= stored and count(SeqGap) == 0
    else:
        assert not set(away) & stored
        gap = db.session.scalars(select(SeqGap)).one()
        assert (gap.expected_seq, gap.got_seq, gap.missing) == (1, 21, 20)


def test_worker_waiting_for_the_embedded_broker_stops_on_sigterm(app, tmp_path):
    w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], "", tmp_path,
               EMBEDDED_BROKER_FILE=str(tmp_path / "never.json"))
    w.start()
    w.wait_log("waiting for the embedded broker")
    assert w.stop("term", timeout=10) == 0


def test_broker_queue_overflow_shows_as_a_seq_gap(app, alley_with_pile, tmp_path, app_ctx):
    """The broker drops past max_queued_messages while the worker is away; the
    pile's `seq` tells staff how many were lost.
    Mosquitto only: the embedded broker has no queue cap to configure (it keeps
    everything in memory); tests/test_ingest_handlers.py covers the gap logic."""
    from chargers.models import SeqGap
    from tests.brokers import MOSQUITTO, Mosquitto, broker_kind

    if broker_kind() != "mosquitto":
        pytest.skip("max_queued_messages is a Mosquitto setting; the embedded broker has no queue cap")
    assert MOSQUITTO
    workdir = tmp_path / "small-queue"
    workdir.mkdir()
    broker = Mosquitto(workdir, extra_conf="allow_anonymous true\nmax_queued_messages 10\n")
    broker.start()
    w = Worker(app.config["SQLALCHEMY_DATABASE_URI"], broker, tmp_path)
    try:
        w.start()
        w.wait_log("subscribed to")
        assert w.stop("term") == 0
        p = PileClient(broker, "P-1", alley_with_pile)
        p.send("boot", seq=0)
        for i in range(1, 40):
            p.send("heartbeat", seq=i)
        p.close()
        w.start()
        w.wait_log("subscribed to")
        # the broker kept the oldest 10; the pile's next message shows the hole
        p = PileClient(broker, "P-1", alley_with_pile)
        p.send("heartbeat", seq=40)
        p.close()
        poll(lambda: count(SeqGap) >= 1, what="a recorded gap")
        gap = db.session.scalars(select(SeqGap)).one()
        assert (gap.expected_seq, gap.got_seq, gap.missing) == (10, 40, 30)
        assert count(ProcessedMessage) + gap.missing == 41
    finally:
        w.stop("term")
        broker.stop()


def test_jobs_run_publishes_through_a_short_lived_connection(app, runner, broker, monkeypatch):
    from chargers import jobs
    from tests.device_clients import Peer

    # Listening as the backend: the one login that may read any pile's cmd topic.
    sub = Peer(broker.port, "listener", *broker.backend_login)
    assert sub.connect()
    assert sub.subscribe(f"{PREFIX}/P-9/cmd") == 1

    def say_hello(now, ctx):
        ctx.publish(f"{PREFIX}/P-9/cmd", {"id": "c-1", "action": "reset"})
        return "published 1"

    monkeypatch.setitem(jobs.REGISTRY, "test-hello", jobs.Job("test-hello", say_hello, "interval",
                                                              {"minutes": 1}))
    monkeypatch.setitem(app.config, "MQTT_URL", broker.url)
    try:
        out = runner.invoke(args=["jobs", "run", "test-hello"])
        assert out.exit_code == 0, out.output
        assert "test-hello: published 1" in out.output
        got = sub.wait_for(f"{PREFIX}/P-9/cmd")
        assert [(m.topic, json.loads(m.payload)) for m in got] == [
            (f"{PREFIX}/P-9/cmd", {"id": "c-1", "action": "reset"})]
    finally:
        sub.close()
