"""The worker's pieces without a broker: batching and acks of the client when the
database is down, the jobs commands, and the staff ingest page."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.ingest import client as client_mod
from chargers.ingest import handlers
from chargers.models import JobRun, Port
from tests.conftest import PASSWORD
from tests.ingest_support import incoming


class FakePaho:
    def __init__(self):
        self.acked = []

    def ack(self, mid, qos):
        self.acked.append(mid)


def received(n: int, generation: int = 1) -> list[client_mod.Received]:
    return [client_mod.Received(incoming("status", port=1, status="charging"), mid=i + 1, qos=1,
                                generation=generation) for i in range(n)]


def test_no_ack_while_the_database_is_down_then_ack_after_commit(app, alley_with_pile, monkeypatch):
    ic = client_mod.IngestClient(app)
    ic.client, ic.generation = FakePaho(), 1
    real = handlers.process
    calls = []

    def flaky(messages, settings=None, now=None, **kw):
        calls.append(len(messages))
        if len(calls) < 3:
            raise handlers.DatabaseUnavailable("database is locked")
        return real(messages, settings, now, **kw)

    monkeypatch.setattr(handlers, "process", flaky)
    monkeypatch.setattr(ic.stopping, "wait", lambda t: False)  # no real back-off sleeps
    ic._apply_and_ack(received(3))
    assert calls == [3, 3, 3]
    assert ic.client.acked == [1, 2, 3]
    with app.app_context():
        assert db.session.scalar(select(Port.status).where(Port.number == 1)) == "charging"


def test_stopping_during_database_outage_acks_nothing(app, alley_with_pile, monkeypatch):
    ic = client_mod.IngestClient(app)
    ic.client, ic.generation = FakePaho(), 1

    def down(*a, **k):
        raise handlers.DatabaseUnavailable("gone")

    monkeypatch.setattr(handlers, "process", down)
    ic.stopping.set()
    ic._apply_and_ack(received(2))
    assert ic.client.acked == []


def test_messages_of_an_old_connection_are_not_acked_on_the_new_one(app, alley_with_pile):
    ic = client_mod.IngestClient(app)
    ic.client, ic.generation = FakePaho(), 2
    ic._apply_and_ack(received(2, generation=1) + received(1, generation=2))
    assert ic.client.acked == [1]


def test_batches_take_what_is_queued(app):
    ic = client_mod.IngestClient(app, batch_max=5, batch_wait_s=0.01)
    for r in received(12):
        ic.inbox.put(r)
    assert [len(ic._take()) for _ in range(3)] == [5, 5, 2]
    assert ic._take() == []


def test_wait_for_broker_stops_when_asked(app):
    stop = threading.Event()
    stop.set()
    assert client_mod.wait_for_broker(app, stop, poll_s=0.01) is None


def test_jobs_list_and_run(app, runner, alley_with_pile):
    out = runner.invoke(args=["jobs", "list"])
    assert out.exit_code == 0, out.output
    for job_id in ("offline-sweep", "stale-sessions", "prune-ledger"):
        assert job_id in out.output
    out = runner.invoke(args=["jobs", "run", "offline-sweep"])
    assert out.exit_code == 0, out.output
    assert "offline-sweep: done" in out.output
    with app.app_context():
        run = db.session.get(JobRun, "offline-sweep")
        assert run.status == "ok" and run.finished_at <= datetime.now(UTC)
    out = runner.invoke(args=["jobs", "list"])
    assert re.search(r"offline-sweep\t\S+.*\t20\d\d-\S+\tok\t", out.output), out.output
    assert runner.invoke(args=["jobs", "run", "nope"]).exit_code != 0


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def login(client, name: str) -> None:
    token = CSRF.search(client.get("/login?lang=en").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302


@pytest.mark.usefixtures("alley_with_pile")
def test_staff_ingest_page_is_scoped(app, client, admin, make_staff):
    with app.app_context():
        handlers.process([incoming("status", payload=b"<script>alert(1)</script>"),
                          incoming("heartbeat", seq=0), incoming("heartbeat", seq=5)])
    login(client, "root")
    page = client.get("/staff/ingest?lang=en").get_data(as_text=True)
    assert "malformed" in page and "4 messages missing" in page
    assert "<script>alert(1)" not in page  # escaped
    client.post("/api/v1/alleys", json={"slug": "far", "name": "Far"},
                headers={"Authorization": f"Bearer {admin[1]}"})
    make_staff("li", ["far"])
    client.get("/logout")
    with client.session_transaction() as s:
        s.clear()
    login(client, "li")
    page = client.get("/staff/ingest?lang=en").get_data(as_text=True)
    assert "malformed" not in page and "messages missing" not in page


def test_mqtt5_sender_property_reaches_the_handlers(app, alley_with_pile):
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    app.config["MQTT_PROTOCOL"] = "5"
    ic = client_mod.IngestClient(app)
    msg = mqtt.MQTTMessage(mid=7, topic=b"chargers/v1/P-1/status")
    msg.payload, msg.qos = b'{"id":"x","ts":"2026-11-27T08:00:00Z","port":1,"status":"charging"}', 1
    msg.properties = Properties(PacketTypes.PUBLISH)
    msg.properties.UserProperty = ("sender", "P-2")
    ic._on_message(None, None, msg)
    [r] = ic._take()
    assert r.msg.sender == "P-2" and r.mid == 7
    with app.app_context():
        assert handlers.process([r.msg]) == ["rejected:sender_mismatch"]


def test_a_failing_callback_does_not_escape(app):
    ic = client_mod.IngestClient(app)
    ic._on_message(None, None, object())  # not a message at all: logged, not raised
    assert ic.inbox.empty()


def test_deferred_messages_are_not_acked_and_come_first_in_the_next_batch(app, monkeypatch):
    """A message the batch left for later (its pile locked by another worker) is not
    acknowledged, is handed in again ahead of newer ones, and after MAX_DEFERRALS goes
    in a batch that waits for locks (may_defer False)."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.01)
    ic.client, ic.generation = FakePaho(), 1
    seen = []

    def defer_first(messages, settings=None, now=None, *, may_defer=False, **_):
        seen.append(([m.payload for m in messages], may_defer))
        return [handlers.DEFERRED if may_defer and i == 0 else "accepted"
                for i in range(len(messages))]

    monkeypatch.setattr(handlers, "process", defer_first)
    first, *rest = received(3)
    ic._apply_and_ack([first, rest[0]])
    assert ic.client.acked == [2]
    ic.inbox.put(rest[1])
    for _ in range(client_mod.MAX_DEFERRALS):
        ic._apply_and_ack(ic._take())
    assert seen[1][0][0] == first.msg.payload  # the deferred one first
    assert [may for _, may in seen] == [True] * client_mod.MAX_DEFERRALS + [False]
    assert sorted(ic.client.acked) == [1, 2, 3] and not ic.carry


def test_a_backlog_is_taken_in_larger_batches(app):
    """A short hiccup's messages stay in batches of batch_max (each is seen sooner);
    a backlog of BACKLOG_BATCHES batches or more (a burst) is taken in batches of
    BACKLOG_BATCH_FACTOR times that: a batch's fixed cost is most of its time."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.01)
    for r in received(10 * client_mod.BACKLOG_BATCHES):  # the first is taken first
        ic.inbox.put(r)
    assert len(ic._take()) == 10
    ic.inbox = type(ic.inbox)()
    for r in received(10 * client_mod.BACKLOG_BATCHES + 1 + 25):
        ic.inbox.put(r)
    assert len(ic._take()) == 10 * client_mod.BACKLOG_BATCH_FACTOR
    assert len(ic._take()) == 10 * client_mod.BACKLOG_BATCH_FACTOR  # still a backlog
    assert len(ic._take()) == 10  # 26 left: no backlog now


def test_after_meeting_another_worker_batches_take_a_share_of_their_piles(app, monkeypatch):
    """A worker alone takes every pile of a batch; once a batch reports most of its
    piles held by another worker, the batches of the next CONTENTION_S take PILE_SHARE
    of them, and up to SHARE_BATCH_FACTOR times batch_max messages."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.01)
    ic.client, ic.generation = FakePaho(), 1
    shares, contended = [], iter([False, True, False])

    def process(messages, settings=None, now=None, *, may_defer=False, pile_share=None,
                report=None, **_):
        shares.append(pile_share)
        report["contended"] = next(contended)
        return ["accepted"] * len(messages)

    monkeypatch.setattr(handlers, "process", process)
    for r in received(3):
        ic._apply_and_ack([r])
    assert shares == [None, None, client_mod.PILE_SHARE]
    for r in received(25):
        ic.inbox.put(r)
    assert len(ic._take()) == 10 * client_mod.SHARE_BATCH_FACTOR  # batch_max 10
    ic.inbox = type(ic.inbox)()
    ic._contended_until = 0  # CONTENTION_S later
    for r in received(25):
        ic.inbox.put(r)
    assert len(ic._take()) == 10
    ic.inbox = type(ic.inbox)()
    monkeypatch.setattr(handlers, "process", lambda m, s=None, n=None, **kw: (
        shares.append(kw.get("pile_share")), ["accepted"] * len(m))[1])
    ic._apply_and_ack(received(1))
    assert shares[-1] is None


def test_a_batch_in_hand_yields_to_an_authorize_and_its_rest_comes_next(app, alley_with_pile):
    """A pile waits for the answer to its `authorize`: a batch of other messages in hand
    when one arrives commits what it has applied (and acks only that), the authorize
    goes next in a batch of its own, then the rest of the batch, unacknowledged until
    its own commit, in its order."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.01)
    ic.client, ic.generation = FakePaho(), 1
    readings = [client_mod.Received(incoming("heartbeat"), mid=i + 1, qos=1, generation=1)
                for i in range(3)]
    asks = client_mod.Received(incoming("authorize", port=1, card="C-1"), mid=9, qos=1,
                               generation=1)
    ic.inbox.put(asks)  # arrived while the batch of readings was in hand
    ic._apply_and_ack(readings)
    assert ic.client.acked == [1]
    assert [r.mid for r in ic.carry] == [2, 3] and ic.stats["yielded"] == 2
    first = ic._take()
    assert [r.mid for r in first] == [9]
    ic._apply_and_ack(first)
    rest = ic._take()
    assert [r.mid for r in rest] == [2, 3]
    ic._apply_and_ack(rest)
    assert ic.client.acked == [1, 9, 2, 3] and not ic.carry
    assert ic.stats["duplicate"] == 0 and ic.stats["accepted"] == 4


def arriving_at(ic, call: int, urgent_one) -> None:
    """The inbox gets `urgent_one` just before its `call`-th `get` (counted from now)."""
    original, calls = client_mod.Inbox.get.__get__(ic.inbox), []

    def get(timeout=None):
        calls.append(timeout)
        if len(calls) == call:
            ic.inbox.put(urgent_one)
        return original(timeout=timeout)

    ic.inbox.get = get


def test_an_authorize_that_comes_while_a_batch_gathers_goes_first_but_only_once(app):
    """An authorize arriving while a batch is being gathered goes before it, and the
    gathered ones come next. A batch that has given way once does not give way again
    while it gathers (it is applied, and yields inside): readings keep moving however
    often cards come."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.2)
    r1, r2 = (client_mod.Received(incoming("heartbeat"), mid=i, qos=1, generation=1)
              for i in (1, 2))
    a1, a2 = (client_mod.Received(incoming("authorize", port=1, card="C-1"), mid=m, qos=1,
                                  generation=1) for m in (8, 9))
    ic.inbox.put(r1)
    ic.inbox.put(r2)
    arriving_at(ic, 2, a1)  # the first get takes r1; a1 comes while the batch gathers
    assert [r.mid for r in ic._take()] == [8]
    assert [r.mid for r in ic.carry] == [1]
    arriving_at(ic, 1, a2)  # the carried batch gathers: a2 comes at once
    assert [r.mid for r in ic._take()] == [1]  # it gave way once: it goes now
    assert [r.mid for r in ic._take()] == [9]
    assert [r.mid for r in ic._take()] == [2]


def test_a_deferred_authorize_keeps_its_place_ahead_of_carried_readings(app, monkeypatch):
    """An authorize left for later (another worker held its pile) leads the next take,
    ahead of the readings carried with it, and in a batch of its own."""
    ic = client_mod.IngestClient(app, batch_max=10, batch_wait_s=0.01)
    ic.client, ic.generation = FakePaho(), 1
    asks = client_mod.Received(incoming("authorize", port=1, card="C-1"), mid=9, qos=1,
                               generation=1)
    readings = [client_mod.Received(incoming("heartbeat"), mid=i, qos=1, generation=1)
                for i in (1, 2)]

    def defer_all(messages, settings=None, now=None, **_):
        return [handlers.DEFERRED] * len(messages)

    monkeypatch.setattr(handlers, "process", defer_all)
    ic._apply_and_ack(readings + [asks])
    assert ic.client.acked == []
    assert [r.mid for r in ic._take()] == [9]
    assert [r.mid for r in ic._take()] == [1, 2]


def test_a_batch_applies_at_least_one_message_before_it_yields(app, alley_with_pile):
    """`yield_to` is asked after each message, never before the first: each batch
    that yields has applied one message at least."""
    msgs = [incoming("heartbeat") for _ in range(3)]
    with app.app_context():
        out = handlers.process(msgs, yield_to=lambda: True)
        assert out[1:] == [handlers.YIELDED] * 2 and out[0].startswith("accepted")
        assert handlers.process(msgs[1:], yield_to=lambda: False)[0].startswith("accepted")
