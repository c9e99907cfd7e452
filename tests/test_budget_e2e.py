"""The power budget end to end: a private Mosquitto, the real worker subprocess and
simulated v1.1 piles (chargers/simulator.py) that ask `authorize`, wait for the answer
and obey it (queued, `start`, their `max_wh` / `max_minutes`), or follow their
`offline_policy` when no answer comes in 10 s; and v1 piles that just switch on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import (
    Alert,
    ChargingSession,
    Notification,
    Pile,
    ResidentChannels,
)
from chargers.services.billing import ledger
from tests.budget_support import (
    Piles,
    account,
    commands,
    energy_tariff,
    feeder,
    records,
    register_piles,
)
from tests.conftest import bearer
from tests.ingest_support import poll


@pytest.fixture
def lane(app, client, admin, alley_with_pile):
    _, token = admin
    energy_tariff(app)
    secrets = {"P-1": alley_with_pile, **register_piles(client, token, 2)}
    return token, secrets


@pytest.fixture
def sim(broker):
    made = []

    def make(secrets, **kw) -> Piles:
        p = Piles(broker, secrets, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def booted(app, ids, features=True):
    def check():
        with app.app_context():
            piles = [db.session.get(Pile, i) for i in ids]
            return all(p.online and (bool(p.features) == features) for p in piles)
    poll(check, timeout=15, what="piles booted")


def channel(app, acc_id: int) -> None:
    with app.app_context():
        db.session.add(ResidentChannels(resident_id=acc_id, email=f"r{acc_id}@example.org",
                                        sms=False))
        db.session.commit()


def session_of(app, pile, port) -> ChargingSession | None:
    with app.app_context():
        s = db.session.scalar(select(ChargingSession).where(
            ChargingSession.pile_id == pile, ChargingSession.port == port)
            .order_by(ChargingSession.id.desc()).limit(1))
        if s is not None:
            db.session.expunge(s)
        return s


def test_each_rejection_reason_and_an_accepted_answer_within_a_second(app, client, lane,
                                                                      start_worker, sim):
    token, secrets = lane
    account(client, token, ["RICH"], balance=10_000)
    account(client, token, ["POOR"], balance=0)
    start_worker()
    piles = sim({"P-1": secrets["P-1"], "P-2": secrets["P-2"]})
    booted(app, ["P-1", "P-2"])
    with app.app_context():
        db.session.get(Pile, "P-1").ports[3].enabled = False  # port 4 out of service
        db.session.commit()
    p1, p2 = piles["P-1"], piles["P-2"]
    p1.present(1, "NOBODY")
    p1.present(2, "POOR")
    p1.present(4, "RICH")
    p1.present(3, "RICH")
    poll(lambda: all(p1.state.ports[i].answer for i in range(4)), timeout=10,
         what="four answers")
    # A fire alarm on P-2, then a card there.
    p2.send("fault", port=1, code="smoke", active=True)
    poll(lambda: _alert(app, "smoke"), timeout=10, what="smoke alert")
    p2.present(2, "RICH")
    poll(lambda: p2.state.ports[1].answer, timeout=10, what="answer on P-2")
    got = {(r.pile_id, r.port): (r.card, r.result, r.reason) for r in records(app)}
    assert got == {("P-1", 1): ("NOBODY", "rejected", "unknown_card"),
                   ("P-1", 2): ("POOR", "rejected", "no_balance"),
                   ("P-1", 4): ("RICH", "rejected", "disabled"),
                   ("P-1", 3): ("RICH", "accepted", None),
                   ("P-2", 2): ("RICH", "rejected", "fire")}
    assert [p.answer for p in p1.state.ports] == ["rejected", "rejected", "accepted", "rejected"]
    # The accepted one charges; the refused ones never switched on.
    poll(lambda: session_of(app, "P-1", 3), timeout=10, what="session on port 3")
    assert session_of(app, "P-1", 1) is None and session_of(app, "P-1", 2) is None
    assert max(ms for ms, _r in p1.auth_latencies + p2.auth_latencies) < 1000
    # Staff see every answer.
    from tests.webtools import login
    login(client, "root")
    page = client.get("/staff/alleys/lane/feeder?lang=en").get_data(as_text=True)
    for words in ("NOBODY", "POOR", "Card not registered", "Balance too low",
                  "Fire alarm on the pile", "Port or pile disabled"):
        assert words in page, words


def _alert(app, code):
    with app.app_context():
        return db.session.scalar(select(Alert).where(Alert.code == code))


def test_a_prepaid_session_ends_on_the_pile_at_zero_balance(app, client, lane, start_worker,
                                                            sim):
    token, secrets = lane
    acc = account(client, token, ["C-1"], balance=100)  # 1.00 yuan at 1.00 yuan/kWh
    start_worker()
    piles = sim({"P-1": secrets["P-1"]}, speed=1200)
    booted(app, ["P-1"])
    piles["P-1"].present(1, "C-1")
    poll(lambda: piles["P-1"].state.ports[0].answer, timeout=10, what="answer")
    [rec] = records(app)
    assert rec.result == "accepted" and rec.max_wh == 1004  # 1004 Wh: 100.4 → 100 fen
    s = poll(lambda: (lambda s: s if s and s.stop_reason else None)(session_of(app, "P-1", 1)),
             timeout=40, what="the pile stops the session")
    assert s.stop_reason == "balance" and s.energy_wh == pytest.approx(1004, abs=0.1)
    assert s.guard_stop_at is None  # the pile stopped it, not the balance guard
    from chargers import settings
    from chargers.models import utcnow
    from chargers.services.billing import settlement
    with app.app_context():  # the `settle` job's run, now rather than within the minute
        settlement.settle(utcnow(), settings.settle(app.config))
    assert client.get(f"/api/v1/accounts/{acc}", headers=bearer(token)).json[
        "balance_cents"] == 0
    with app.app_context():
        assert ledger.verify() == []
        from chargers.models import ResidentAccount
        assert ledger.balance(db.session.get(ResidentAccount, acc)) == 0


def test_queue_starts_in_order_and_a_resident_who_leaves_is_dropped(app, client, lane,
                                                                   start_worker, sim):
    token, secrets = lane
    ids = {c: account(client, token, [c], balance=100_000) for c in "ABCD"}
    for acc in ids.values():
        channel(app, acc)
    feeder(client, token, 1000, 0)  # one session at the 800 W port limit
    start_worker()
    piles = sim({"P-1": secrets["P-1"]}, speed=1200)
    booted(app, ["P-1"])
    p = piles["P-1"]
    p.present(1, "A", need_wh=700)
    poll(lambda: p.state.ports[0].answer, timeout=10, what="A answered")
    for n, card in ((2, "B"), (3, "C"), (4, "D")):
        p.present(n, card, need_wh=150)
        poll(lambda n=n: p.state.ports[n - 1].answer, timeout=10, what=f"{card} answered")
    assert [(r.card, r.result, r.position) for r in records(app)] == [
        ("A", "accepted", None), ("B", "queued", 1), ("C", "queued", 2), ("D", "queued", 3)]
    assert client.get("/api/v1/alleys/lane").json["queue"] == 3
    page = client.get("/p/P-1?lang=zh").get_data(as_text=True)
    assert "排队中，第 3 位" in page
    p.unplug(3)  # C's bike leaves
    poll(lambda: {r.card: r.queue_state for r in records(app)}["C"] == "dropped", timeout=10,
         what="C dropped")
    # A finishes, B gets the start; B finishes, D gets it. C never.
    poll(lambda: {r.card: r.queue_state for r in records(app)}["D"] == "charging", timeout=60,
         what="D charging")
    starts = commands(app, "start")
    assert [(c.port, c.args["card"]) for c in starts] == [(2, "B"), (4, "D")]
    assert [c.status for c in starts] == ["accepted", "accepted"]
    b, d = session_of(app, "P-1", 2), session_of(app, "P-1", 4)
    assert b.card == "B" and d.card == "D" and b.started_at <= d.started_at
    assert session_of(app, "P-1", 3) is None
    with app.app_context():
        told = {n.target for n in db.session.scalars(select(Notification).where(
            Notification.reason == "queue_start"))}
    assert told == {f"r{ids['B']}@example.org", f"r{ids['D']}@example.org"}


def test_over_budget_stops_the_newest_session_of_v1_piles_and_tells_its_holder(
        app, client, lane, start_worker, sim):
    token, secrets = lane
    ids = {c: account(client, token, [c], balance=100_000) for c in ("V1", "V2", "V3")}
    for acc in ids.values():
        channel(app, acc)
    feeder(client, token, 1000, 0)  # three at 380 W: 1140 W
    start_worker(BUDGET_READING_S="1")
    piles = sim({"P-1": secrets["P-1"]}, speed=60, features=())
    booted(app, ["P-1"], features=False)
    p = piles["P-1"]
    for n, card in ((1, "V1"), (2, "V2"), (3, "V3")):
        p.present(n, card)
        poll(lambda n=n: session_of(app, "P-1", n), timeout=10, what=f"session {n}")
    s = poll(lambda: (lambda s: s if s.guard_reason else None)(session_of(app, "P-1", 3)),
             timeout=40, what="the newest stopped")
    assert s.guard_reason == "over_budget"
    poll(lambda: session_of(app, "P-1", 3).stop_reason == "remote", timeout=10,
         what="the pile stopped it")
    assert session_of(app, "P-1", 1).guard_reason is None
    assert session_of(app, "P-1", 2).guard_reason is None
    assert _alert(app, "over_budget") is not None
    with app.app_context():
        told = [n.target for n in db.session.scalars(select(Notification).where(
            Notification.reason == "budget_stop"))]
    assert told == [f"r{ids['V3']}@example.org"]
    with app.app_context():  # kept on the account, once for the session
        from chargers.models import Reminder
        kept = db.session.scalars(select(Reminder).where(Reminder.kind == "budget_stop")).all()
        assert [(r.resident_id, r.key) for r in kept] == [(ids["V3"], f"budget:{s.id}")]


def test_offline_policy_when_the_backend_does_not_answer(app, client, lane, start_worker, sim):
    token, secrets = lane
    account(client, token, ["C-1", "C-2"], balance=100_000)
    w = start_worker()
    piles = sim({"P-1": secrets["P-1"], "P-2": secrets["P-2"]}, speed=600)
    booted(app, ["P-1", "P-2"])
    assert w.stop("term") == 0  # the backend is away: its session queues what comes
    # What the piles applied earlier (and keep across reboots).
    piles["P-1"].config_settings = {"offline_policy": "accept", "offline_max_minutes": 30}
    piles["P-2"].config_settings = {"offline_policy": "reject"}
    piles["P-1"].present(1, "C-1")
    piles["P-2"].present(1, "C-2")
    poll(lambda: piles["P-1"].state.ports[0].answer and piles["P-2"].state.ports[0].answer,
         timeout=15, what="both gave up waiting")
    assert piles["P-1"].state.ports[0].answer == "offline" and piles["P-1"].offline_starts == 1
    assert piles["P-2"].offline_starts == 0 and piles["P-2"].sessions == 0
    w.start()
    w.wait_log("subscribed to")
    # P-1 charged on its own, for at most its offline 30 minutes; P-2 never switched on.
    s = poll(lambda: (lambda s: s if s and s.stop_reason else None)(session_of(app, "P-1", 1)),
             timeout=30, what="P-1's session and its end")
    assert s.card == "C-1" and s.stop_reason == "timeout"
    assert session_of(app, "P-2", 1) is None
    recs = poll(lambda: (lambda r: r if len(r) == 2 else None)(records(app)), timeout=10,
                what="both authorizes recorded")
    assert {r.drop_reason for r in recs} == {"late"}  # answered, too late for the piles
    assert all(r.admitted_at is None for r in recs)
