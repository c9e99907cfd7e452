"""Several ingest workers on PostgreSQL (issue 12): two `flask --app wsgi worker`
processes, each with its own client id and persistent session, take the device topics
through a Mosquitto shared subscription. Every message the broker acknowledged is
applied exactly once, also when one worker is SIGKILLed mid-stream and started again;
and while one worker is down, a smoke fault still raises its alert and cuts the port
off within seconds (faults also come on a non-shared subscription to every worker)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import (
    Alert,
    Alley,
    ChargingSession,
    Command,
    IngestCounter,
    MeterSample,
    Pile,
    ProcessedMessage,
    Rejection,
    SeqGap,
)
from chargers.services.devices import piles as piles_service
from tests.ingest_support import PREFIX, Worker, ts
from tests.ingest_support import Pile as PileClient
from tests.pg_schema import on_postgresql

N_PILES, PORTS, PER_PILE = 50, 4, 200  # 10,000 messages


pg_schema, app_config = on_postgresql("chargers_scale")


def seed(app, n: int = N_PILES) -> list[str]:
    ids = [f"S{i:03d}" for i in range(n)]
    with app.app_context():
        alley = Alley(slug="big", name="Big", timezone="Asia/Shanghai")
        db.session.add(alley)
        db.session.flush()
        for pile_id in ids:
            pile = Pile(id=pile_id, alley_id=alley.id, port_count=0, secret_hash="-")
            piles_service.resize_ports(pile, PORTS)
            db.session.add(pile)
        db.session.commit()
    return ids


def script(pile_id: str, n: int, run: str) -> list[tuple[str, dict]]:
    """`n` messages of one pile after its boot (not included): charges port after
    port, with meters and heartbeats; seq 1..n."""
    t0 = datetime.now(UTC) - timedelta(hours=1)
    out: list[tuple[str, dict]] = []

    def add(kind: str, **fields):
        seq = len(out) + 1
        body = {"id": f"{run}-{seq}", "ts": ts(t0 + timedelta(seconds=seq)), "seq": seq, **fields}
        out.append((f"{PREFIX}/{pile_id}/{kind}", body))

    cycle = 0
    while len(out) < n:
        port, ref = cycle % PORTS + 1, f"{run}-T{cycle}"
        add("status", port=port, status="occupied")
        add("session", event="start", port=port, session=ref, meter_wh=0)
        add("status", port=port, status="charging")
        for k in range(1, 9):
            add("meter", port=port, session=ref, power_w=300.0, energy_wh=5.0 * k)
            if k % 4 == 0:
                add("heartbeat", rssi=-60)
        add("session", event="stop", port=port, session=ref, energy_wh=40.0, reason="full")
        add("status", port=port, status="available")
        cycle += 1
    return out[:n]


class Publishers:
    """A few paho clients publishing QoS 1 in the background (the piles' traffic)."""

    def __init__(self, port: int, lists: list[list[tuple[str, dict]]]):
        self.clients = []
        for i, _ in enumerate(lists):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{i}",
                            protocol=mqtt.MQTTv311)
            c.max_inflight_messages_set(100)
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)
        self.infos: list = []
        self.threads = [threading.Thread(target=self._run, args=(c, msgs))
                        for c, msgs in zip(self.clients, lists, strict=True)]
        for t in self.threads:
            t.start()

    def _run(self, client, msgs):
        for topic, body in msgs:
            self.infos.append(client.publish(topic, json.dumps(body), qos=1))

    def wait_acked(self, timeout: float = 120) -> None:
        for t in self.threads:
            t.join(timeout)
        for info in self.infos:
            info.wait_for_publish(timeout)
            assert info.is_published()

    def close(self):
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def count(app, model) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
        return n


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def two_workers(app, mosquitto, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    workers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        w = Worker(url, mosquitto, tmp_path / name, WORKER_NAME=name, MQTT_SHARE_GROUP="ingest",
                   SEQ_GAP_WINDOW_S=600)
        w.start()
        workers.append(w)
    for w in workers:
        w.wait_log("subscribed to $share/ingest/", timeout=60)
    return workers


def stop_all(workers):
    for w in workers:
        w.stop("term", timeout=60)
    for w in workers:
        assert "Traceback" not in w.output(), w.output()[-3000:]


def boot_all(app, port: int, ids: list[str]) -> None:
    """Each pile boots (seq 0) before its stream: a boot resets the sequence, so it
    must not overtake the messages after it."""
    lists = [[(f"{PREFIX}/{p}/boot", {"id": f"boot-{p}", "ts": ts(), "seq": 0, "model": "EB",
                                       "firmware": "1", "ports": PORTS, "max_power_w": 1000})
              for p in ids]]
    pubs = Publishers(port, lists)
    pubs.wait_acked()
    pubs.close()
    wait_for(lambda: count(app, ProcessedMessage) >= len(ids), 60, "boots applied")


def test_two_workers_apply_10000_messages_exactly_once_through_a_sigkill(app, mosquitto,
                                                                         tmp_path):
    ids = seed(app)
    workers = two_workers(app, mosquitto, tmp_path)
    try:
        # Each pile boots in the stream (seq 0): a worker may apply it after messages
        # that followed it.
        per_pile = {p: script(p, PER_PILE, f"r-{p}") for p in ids}
        for p, msgs in per_pile.items():
            msgs.insert(0, (f"{PREFIX}/{p}/boot", {
                "id": f"boot-{p}", "seq": 0,
                "ts": ts(datetime.fromisoformat(msgs[0][1]["ts"]) - timedelta(seconds=1)), "model": "EB",
                "firmware": "1", "ports": PORTS, "max_power_w": 1000}))
        # five publishers, each a tenth of the piles, interleaved: every pile's
        # messages leave in order, the broker spreads them over both workers
        lists = [[] for _ in range(5)]
        for i, p in enumerate(ids):
            lists[i % 5].append(per_pile[p])
        lists = [[m for group in zip(*piles_msgs, strict=True) for m in group]
                 for piles_msgs in lists]
        total = sum(len(v) for v in per_pile.values())
        assert total == 10_000 + N_PILES
        pubs = Publishers(mosquitto.port, lists)
        try:
            wait_for(lambda: count(app, ProcessedMessage) >= 3000, 120, "3000 applied")
            workers[0].stop("kill")  # mid-stream, mid-batch
            time.sleep(1)
            workers[0].start()
            pubs.wait_acked()
        finally:
            pubs.close()
        wait_for(lambda: count(app, ProcessedMessage) >= total, 300,
                 f"{total} messages applied")
        time.sleep(1)  # anything applied twice would show now
        assert "session_present=1" in workers[0].output().rsplit("--- start 2", 1)[-1]
    finally:
        stop_all(workers)

    with app.app_context():
        assert count(app, ProcessedMessage) == total
        accepted = Counter()
        for row in db.session.scalars(select(IngestCounter)):
            kind, _, rest = row.key.partition(":")
            if kind == "accepted":
                accepted[rest] = row.count
        assert sum(accepted.values()) == total, accepted
        assert count(app, Rejection) == 0
        meters = sum(1 for msgs in per_pile.values() for t, _ in msgs if t.endswith("/meter"))
        assert count(app, MeterSample) == meters
        # every session started and stopped once, with its energy
        sessions = db.session.scalars(select(ChargingSession)).all()
        starts = sum(1 for msgs in per_pile.values() for t, b in msgs
                     if t.endswith("/session") and b["event"] == "start")
        assert len(sessions) == starts
        assert {(s.status, s.energy_wh) for s in sessions if s.ended_at} <= {("stopped", 40.0)}
        # out of order across the workers, but nothing missing: every gap filled
        assert db.session.scalar(select(func.count()).select_from(SeqGap)
                                 .where(SeqGap.status != "filled")) == 0
        assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
        assert {p.last_seq for p in db.session.scalars(select(Pile))} == {PER_PILE}


def test_a_smoke_fault_reaches_a_live_worker_while_the_other_is_down(app, mosquitto, tmp_path):
    ids = seed(app, 6)
    workers = two_workers(app, mosquitto, tmp_path)
    piles = [PileClient(mosquitto, p, hear_cmd=True) for p in ids]
    try:
        boot_all(app, mosquitto.port, ids)
        workers[0].stop("kill")  # its session stays: the broker queues its share
        sent = [p.send("fault", port=2, code="smoke", active=True, seq=1) for p in piles]

        def cut_off():  # a fire code cuts the whole pile: stop every port, disable the pile
            return all({(c["action"], c.get("port")) for c in p.commands()}
                       >= {("stop", 2), ("disable", None)} for p in piles)

        # The bound: a few seconds of a loaded machine, not the dead worker's return.
        wait_for(cut_off, 20, "cut-off at every pile")
        with app.app_context():
            alerts = db.session.scalars(select(Alert)).all()
            assert sorted(a.pile_id for a in alerts) == ids
            assert {(a.code, a.port, a.severity) for a in alerts} == {("smoke", 2, "critical")}
        # The dead worker comes back to its queued copies: duplicates, nothing twice.
        workers[0].start()
        workers[0].wait_log("subscribed to", timeout=60)
        wait_for(lambda: "duplicate" in _counters(app), 30, "queued copies dropped")
        time.sleep(1)
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Alert)) == len(ids)
            assert count(app, ProcessedMessage) == 2 * len(ids)
            assert db.session.scalar(select(func.count()).select_from(Command)) >= 2 * len(ids)
        assert len(sent) == len(ids)
    finally:
        for p in piles:
            p.close()
        stop_all(workers)


def _counters(app) -> dict[str, int]:
    with app.app_context():
        out = {r.key: r.count for r in db.session.scalars(select(IngestCounter))}
        db.session.rollback()
        return out


def test_web_processes_hear_alley_versions_from_postgresql(app):
    """The web's version watcher (LISTEN) learns a bump at the ingest's commit, so a
    request for an unchanged alley needs no query and a changed one is rebuilt; a bump
    of another schema's alley of the same id is not taken for it."""
    from sqlalchemy.engine import make_url

    from chargers.ingest import handlers
    from chargers.web.viewcache import VersionWatcher
    from tests.ingest_support import incoming

    [pile_id] = seed(app, 1)
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    watcher = VersionWatcher(url.render_as_string(hide_password=False))
    assert watcher.ok.wait(10)
    with app.app_context():
        alley = db.session.scalar(select(Alley))
        state = (alley.id, alley.state_version)
    watcher.remember("big", state, watcher.generation)
    assert watcher.lookup("big") == state
    with app.app_context():
        # Another schema's alley of the same id (the channel is the whole database's):
        # not this watcher's business.
        from chargers.services.charging.availability import NOTIFY_CHANNEL
        db.session.execute(select(func.pg_notify(NOTIFY_CHANNEL, f"elsewhere|{state[0]}:999999")))
        db.session.commit()
        handlers.process([incoming("status", pile=pile_id, port=1, status="charging")])
        new = db.session.scalar(select(Alley.state_version))
    assert new > state[1]
    wait_for(lambda: watcher.lookup("big") == (state[0], new), 10, "the NOTIFY")
    # What another schema announces for an alley of the same id changes nothing.
    watcher._note(f"elsewhere|{state[0]}:999999")
    assert watcher.lookup("big") == (state[0], new)
    watcher._note(f"{watcher.schema}|{state[0]}:{new + 1}")
    assert watcher.lookup("big") == (state[0], new + 1)


def _hold_pile_lock(url: str, pile_id: str):
    """Another worker's transaction holding `pile_id`'s row lock: (connection, release)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg.connect(host=u.host, port=u.port, dbname=u.database,
                           options=u.query["options"])
    conn.execute("SELECT id FROM piles WHERE id = %s FOR UPDATE", (pile_id,))
    return conn


def test_a_batch_leaves_piles_another_worker_holds_for_later(app):
    """With may_defer, messages of a pile whose lock another transaction holds come
    back `deferred` and change nothing; the rest of the batch is applied at once. The
    same messages handed in again once the lock is gone are applied, once."""
    from chargers.ingest import handlers
    from tests.ingest_support import incoming

    held, free = seed(app, 2)
    other = _hold_pile_lock(app.config["SQLALCHEMY_DATABASE_URI"], held)
    msgs = [incoming("status", pile=held, port=1, status="charging", seq=1),
            incoming("status", pile=free, port=1, status="charging", seq=1),
            incoming("heartbeat", pile=held, seq=2)]
    try:
        with app.app_context():
            assert handlers.process(msgs, may_defer=True) == [
                handlers.DEFERRED, "accepted", handlers.DEFERRED]
            assert db.session.scalar(select(func.count()).select_from(ProcessedMessage)
                                     .where(ProcessedMessage.pile_id == held)) == 0
            assert _counters(app).get("accepted:status") == 1
    finally:
        other.rollback()
        other.close()
    with app.app_context():
        again = [msgs[0], msgs[2]]
        assert handlers.process(again, may_defer=True) == ["accepted", "accepted"]
        assert handlers.process(again, may_defer=True) == ["duplicate", "duplicate"]
        assert db.session.scalar(select(func.count()).select_from(ProcessedMessage)) == 3


def test_a_batch_whose_piles_are_all_held_waits_for_them(app):
    """When every pile of a batch is locked elsewhere, deferring would only spin: the
    batch waits for the lock as without may_defer, and applies everything."""
    from chargers.ingest import handlers
    from tests.ingest_support import incoming

    [held] = seed(app, 1)
    other = _hold_pile_lock(app.config["SQLALCHEMY_DATABASE_URI"], held)
    releaser = threading.Timer(0.5, other.rollback)
    releaser.start()
    try:
        with app.app_context():
            out = handlers.process([incoming("status", pile=held, port=2, status="charging")],
                                   may_defer=True)
        assert out == ["accepted"]
    finally:
        releaser.join()
        other.close()


def test_a_batch_takes_its_share_of_piles_and_says_when_it_met_another_worker(app):
    """With pile_share 0.5 a batch takes the first half of its piles (in the order
    the messages name them) and leaves the others' messages `deferred:later`; a pile
    another worker holds is `deferred`, and the report says the batch met it."""
    from chargers.ingest import handlers
    from tests.ingest_support import incoming

    a, b, c, d = seed(app, 4)
    msgs = [incoming("heartbeat", pile=p, seq=1) for p in (c, a, d, b)]
    with app.app_context():
        report: dict = {}
        out = handlers.process(msgs, may_defer=True, pile_share=0.5, report=report)
        assert out == ["accepted", "accepted", handlers.DEFERRED_LATER, handlers.DEFERRED_LATER]
        assert report == {"contended": False}
    other = _hold_pile_lock(app.config["SQLALCHEMY_DATABASE_URI"], d)
    try:
        with app.app_context():
            again = [incoming("heartbeat", pile=p, seq=2) for p in (d, b)]
            report = {}
            out = handlers.process(again, may_defer=True, pile_share=0.5, report=report)
            assert out == [handlers.DEFERRED, "accepted"]
            assert report == {"contended": True}
    finally:
        other.rollback()
        other.close()
