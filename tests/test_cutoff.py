"""A fire cut-off is done only when the pile confirms it (services/alerts/cutoff.py).

End to end: a private Mosquitto, the real worker subprocess, and a simulated pile (a
paho client logged in with its secret, on its own cmd topic) that answers as a real
pile would in four ways: as it should; never; acking but still charging; and
vanishing in the middle of the cut-off to come back 40 s later. The state is read
where people read it: the API, the residents' page and the staff desk.
"""

from __future__ import annotations

import json
import queue
import threading
import time

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alert, Alley, Command, Contact, Notification
from tests.conftest import bearer
from tests.ingest_support import Pile, poll
from tests.webtools import login

PORTS = 4


class RespondingPile(Pile):
    """A pile that answers its commands (in a thread of its own, as a pile's firmware
    would, never inside the network callback) by `mode`:
    - `normal`: acks `accepted`; a stopped port goes `finishing`, a disabled pile's
      ports `unavailable`;
    - `silent`: hears the commands and never answers;
    - `stubborn`: acks `accepted` and goes on reporting `charging`.
    An id seen before is acked again and not acted on (commands are idempotent at the
    pile, as the protocol says)."""

    def __init__(self, broker, secret: str, mode: str = "normal"):
        self.mode = mode
        self.inbox: queue.Queue = queue.Queue()
        self.heard: list[dict] = []
        self.done: dict[str, str] = {}
        self.seq = 0
        self.secret = secret
        super().__init__(broker, "P-1", secret, hear_cmd=True)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _on_message(self, client, userdata, message):
        if message.topic == self.topic("cmd"):
            cmd = json.loads(message.payload)
            self.heard.append(cmd)
            self.inbox.put(cmd)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def say(self, kind: str, **fields) -> None:
        self.send(kind, seq=self.next_seq(), **fields)

    def smoke(self, port: int = 3) -> None:
        self.say("fault", port=port, code="smoke", active=True, value=0.9)

    def start_charging(self) -> None:
        self.online()
        self.send("boot", seq=0, ports=PORTS)
        for n in range(1, PORTS + 1):
            self.say("status", port=n, status="charging")

    def _answer(self) -> None:
        while not self.stop_flag.is_set():
            try:
                cmd = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if self.mode == "silent":
                continue
            if cmd["id"] in self.done:  # the same id again: ack again, do nothing
                self.say("ack", cmd=cmd["id"], result=self.done[cmd["id"]])
                continue
            self.done[cmd["id"]] = "accepted"
            self.say("ack", cmd=cmd["id"], result="accepted")
            if self.mode == "stubborn":
                for n in ([cmd["port"]] if cmd.get("port") else range(1, PORTS + 1)):
                    self.say("status", port=n, status="charging")
                continue
            if cmd["action"] == "stop":
                self.say("status", port=cmd["port"], status="finishing")
            elif cmd["action"] == "disable":
                for n in ([cmd["port"]] if cmd.get("port") else range(1, PORTS + 1)):
                    self.say("status", port=n, status="unavailable")

    def close(self) -> None:
        self.stop_flag.set()
        super().close()


@pytest.fixture
def contacts(app, alley_with_pile):
    """Level 1 and level 2 contacts of the alley, one with a phone for SMS."""
    with app.app_context():
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        db.session.add_all([
            Contact(alley_id=alley.id, name="Wang", level=1, channel="email",
                    target="wang@example.org", phone="13800000001"),
            Contact(alley_id=alley.id, name="Li", level=2, channel="email",
                    target="li@example.org"),
        ])
        db.session.commit()



def the_alert(app) -> Alert | None:
    with app.app_context():
        alert = db.session.scalar(select(Alert).where(Alert.code == "smoke"))
        if alert is not None:
            db.session.expunge(alert)
        return alert


def wait_cutoff(app, state: str, timeout: float) -> Alert:
    def check():
        a = the_alert(app)
        return a if a is not None and a.cutoff == state else None
    return poll(check, timeout=timeout, what=f"cut-off {state}")


def commands_of(app) -> list[Command]:
    with app.app_context():
        rows = list(db.session.scalars(select(Command).order_by(Command.created_at)))
        for r in rows:
            db.session.expunge(r)
        return rows


def api_cutoff(client, token) -> str:
    [row] = client.get("/api/v1/alerts?status=active", headers=bearer(token)).json
    return row["cutoff"]


@pytest.fixture
def fire_pile(broker, alley_with_pile):
    piles = []

    def make(mode: str) -> RespondingPile:
        p = RespondingPile(broker, alley_with_pile, mode)
        piles.append(p)
        p.start_charging()
        return p

    yield make
    for p in piles:
        p.close()


def test_normal_cutoff_is_confirmed_within_a_second(app, client, admin, start_worker,
                                                    contacts, fire_pile):
    start_worker()
    pile = fire_pile("normal")
    pile.smoke()
    alert = wait_cutoff(app, "confirmed", timeout=10)
    took = (alert.cutoff_confirmed_at - alert.cutoff_requested_at).total_seconds()
    # About 0.1-0.3 s on a quiet machine (1.2 s seen on a busy one); a cut-off confirmed
    # only by the first re-send (CUTOFF_RETRY_BASE_S, 2 s) fails.
    assert took < 2.0, f"confirmed after {took:.2f} s"
    assert {c.status for c in commands_of(app)} == {"accepted"}
    assert api_cutoff(client, admin[1]) == "confirmed"
    html = client.get("/a/lane").get_data(as_text=True)
    assert 'data-cutoff="confirmed"' in html and "已断电（充电桩已确认）" in html
    assert "断电未确认" not in html


def test_a_pile_that_never_acks_is_retried_escalated_and_shown_unconfirmed(
        app, client, admin, start_worker, contacts, fire_pile):
    start_worker(CUTOFF_CONFIRM_S=4, CUTOFF_RETRY_BASE_S=1)
    pile = fire_pile("silent")
    pile.smoke()
    wait_cutoff(app, "pending", timeout=10)
    assert api_cutoff(client, admin[1]) == "pending"
    assert "正在断电…" in client.get("/a/lane").get_data(as_text=True)
    alert = wait_cutoff(app, "unconfirmed", timeout=4 + 5)
    late = (alert.cutoff_unconfirmed_at - alert.cutoff_requested_at).total_seconds()
    assert 4 <= late < 6, late
    # retried: the same ids heard again (backoff 1 s, 2 s, ...)
    poll(lambda: len(pile.heard) >= 3 * (PORTS + 1), timeout=10, what="re-sends")
    ids = [c["id"] for c in pile.heard]
    assert len(set(ids)) == PORTS + 1 and len(ids) >= 3 * (PORTS + 1)
    # escalated at once: level 1 and 2 by their channels, and SMS to the phone
    with app.app_context():
        sent = list(db.session.scalars(select(Notification).where(
            Notification.alert_id == alert.id, Notification.reason == "cutoff")))
    assert {(n.channel, n.target) for n in sent} == {
        ("email", "wang@example.org"), ("email", "li@example.org"), ("sms", "13800000001")}
    # the API, the residents and the staff desk all say "unconfirmed"
    assert api_cutoff(client, admin[1]) == "unconfirmed"
    html = client.get("/a/lane").get_data(as_text=True)
    assert "断电未确认：请远离，不要插拔；工作人员已收到通知" in html and "119" in html
    assert "已断电（" not in html
    login(client, "root")
    desk = client.get("/staff/").get_data(as_text=True)
    assert 'class="cutoff-alarm"' in desk and "再试一次" in desk
    page = client.get(f"/staff/alerts/{alert.id}").get_data(as_text=True)
    assert 'data-cutoff="unconfirmed"' in page


def test_a_pile_that_acks_but_keeps_charging_stays_unconfirmed(app, client, admin, start_worker,
                                                               contacts, fire_pile):
    start_worker(CUTOFF_CONFIRM_S=3, CUTOFF_RETRY_BASE_S=1)
    fire_pile("stubborn").smoke()
    wait_cutoff(app, "unconfirmed", timeout=10)
    time.sleep(2)  # acked, and later rounds acked too: still not done
    assert the_alert(app).cutoff == "unconfirmed"
    cmds = commands_of(app)
    assert all(c.status == "accepted" for c in cmds if c.status != "pending")
    # every port still charging got a new stop (a new id: the old one was acted on)
    stops = [c for c in cmds if c.action == "stop"]
    assert len(stops) > PORTS
    assert api_cutoff(client, admin[1]) == "unconfirmed"


@pytest.mark.slow
def test_a_pile_that_drops_off_and_returns_40_s_later_gets_the_cutoff_then(
        app, client, admin, start_worker, contacts, fire_pile):
    start_worker()  # CUTOFF_CONFIRM_S: the default 30 s
    pile = fire_pile("silent")
    pile.smoke()
    poll(lambda: len(pile.heard) >= PORTS + 1, timeout=10, what="the cut-off heard")
    pile.vanish()  # gone before it could act: the broker publishes its will
    gone_at = time.monotonic()
    alert = wait_cutoff(app, "unconfirmed", timeout=40)
    assert 30 <= (alert.cutoff_unconfirmed_at - alert.cutoff_requested_at).total_seconds() < 33
    time.sleep(max(0.0, 40 - (time.monotonic() - gone_at)))
    back = fire_pile("normal")  # the same pile, reconnected (a clean session)
    t0 = time.monotonic()
    alert = wait_cutoff(app, "confirmed", timeout=10)
    assert time.monotonic() - t0 < 5
    assert back.heard, "nothing arrived after the reconnect"
    with app.app_context():
        events = [e.action for e in db.session.get(Alert, alert.id).events]
    assert "cutoff_unconfirmed" in events and events[-1] == "cutoff_confirmed"
    assert api_cutoff(client, admin[1]) == "confirmed"


def test_staff_try_again_makes_it_pending_with_a_new_deadline(app, client, admin, start_worker,
                                                               contacts, fire_pile):
    start_worker(CUTOFF_CONFIRM_S=2, CUTOFF_RETRY_BASE_S=1)
    pile = fire_pile("silent")
    pile.smoke()
    alert = wait_cutoff(app, "unconfirmed", timeout=8)
    pile.mode = "normal"
    r = client.post(f"/api/v1/alerts/{alert.id}/cutoff/retry", headers=bearer(admin[1]))
    assert r.status_code == 200 and r.json["cutoff"] in ("pending", "confirmed")
    wait_cutoff(app, "confirmed", timeout=8)
    r = client.post(f"/api/v1/alerts/{alert.id}/cutoff/retry", headers=bearer(admin[1]))
    assert r.status_code == 409
