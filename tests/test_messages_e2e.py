"""Session messages end to end: a private Mosquitto (or the suite's broker), the real
worker subprocess (ingest + the outbox job), a simulated pile speaking the protocol
(a paho client logged in with its secret) that repeats itself as QoS 1 piles do, and the
WeChat emulator receiving the subscription messages. Each message arrives once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers.devtools.wechat_mp import WechatMP
from chargers.extensions import db
from chargers.models import ChargingSession, Notification, Reminder, ResidentChannels
from tests.ingest_support import Pile, body, poll, ts
from tests.test_settlement import make_account

WECHAT = {"WECHAT_MP_APP_ID": "wx-e2e", "WECHAT_MP_APP_SECRET": "e2e-secret",
          "WECHAT_MP_TEMPLATE_SESSION_START": "tpl-start", "WECHAT_MP_TEMPLATE_FULL": "tpl-full",
          "WECHAT_MP_TEMPLATE_STOPPED": "tpl-stopped", "WECHAT_MP_TEMPLATE_FAILED": "tpl-failed",
          "WEBHOOK_ALLOW_PRIVATE": "1"}


@pytest.fixture
def mp():
    with WechatMP(WECHAT["WECHAT_MP_APP_ID"], WECHAT["WECHAT_MP_APP_SECRET"]) as emulator:
        yield emulator


@pytest.fixture
def pile(broker, alley_with_pile):
    p = Pile(broker, "P-1", alley_with_pile)
    yield p
    p.close()


def twice(pile: Pile, kind: str, **fields) -> dict:
    """Publish a message, then the very same payload again (a QoS 1 redelivery), then
    the same event under a new message id (a pile that repeats itself)."""
    import json

    data = body(kind, **fields)
    raw = json.dumps(data).encode()
    pile.publish_raw(pile.topic(kind), raw)
    pile.publish_raw(pile.topic(kind), raw)
    pile.send(kind, **fields)
    return data


def test_each_session_message_arrives_once_through_broker_worker_and_wechat(
        app, client, admin, start_worker, pile, mp):
    acc = make_account(client, admin[1], ["C-1"], topup=2000)
    with app.app_context():
        db.session.add(ResidentChannels(resident_id=acc, email="", sms=False,
                                        wechat_openid="o-e2e", wechat=True,
                                        night=True))  # any hour of the test's day
        db.session.commit()
    worker = start_worker(WECHAT_MP_API_BASE=mp.base_url, **WECHAT)

    def wait(n: int, what: str) -> None:
        """Until the emulator holds n messages; else what the outbox and worker said."""
        try:
            poll(lambda: len(mp.received) >= n, timeout=90, what=what)
        except AssertionError:
            with app.app_context():
                rows = [(n.reason, n.status, n.last_error, n.next_attempt_at)
                        for n in db.session.scalars(select(Notification))]
                keys = db.session.scalars(select(Reminder.key)).all()
            raise AssertionError(f"{what}: {mp.received} {rows} {keys} {mp.answers}\n"
                                 f"{worker.output()[-4000:]}") from None

    pile.online()
    pile.send("boot", ports=4)
    now = datetime.now(UTC)
    # Port 1: a charge of 100 minutes to full (begun well inside SESSION_STALE_S, 2 h:
    # a start 2 h back with no reading yet is stale, and the worker's job would close it).
    twice(pile, "session", event="start", port=1, session="E1", card="C-1", meter_wh=0,
          ts=ts(now - timedelta(minutes=100)))
    # (A start and its stop applied in one batch, after an outage, say only the end.)
    wait(1, "the start message")
    pile.send("meter", port=1, session="E1", power_w=250.0, energy_wh=400.0,
              ts=ts(now - timedelta(minutes=30)))
    twice(pile, "session", event="stop", port=1, session="E1", energy_wh=480.0, reason="full",
          ts=ts(now - timedelta(minutes=1)))
    # Port 2: plugged in, nothing flowed, unplugged after a minute: 未能充电.
    twice(pile, "session", event="start", port=2, session="E2", card="C-1", meter_wh=0,
          ts=ts(now - timedelta(minutes=3)))
    wait(3, "the second start message")
    twice(pile, "session", event="stop", port=2, session="E2", energy_wh=2.0,
          reason="unplugged", ts=ts(now - timedelta(minutes=2)))

    wait(4, "four WeChat messages")
    time.sleep(6)  # another round of the outbox job: nothing more may come
    with app.app_context():
        seen = [(x.session_ref, x.started_at, x.ended_at, x.stop_reason, x.energy_wh)
                for x in db.session.scalars(select(ChargingSession))]
    assert sorted(m["template_id"] for m in mp.received) == [
        "tpl-failed", "tpl-full", "tpl-start", "tpl-start"], (seen, worker.output()[-3000:])
    assert {m["touser"] for m in mp.received} == {"o-e2e"}
    start = next(m for m in mp.received if m["template_id"] == "tpl-start")
    assert start["data"]["amount3"] == {"value": "20.00元"}
    with app.app_context():
        keys = db.session.scalars(select(Reminder.key)).all()
        assert len(keys) == len(set(keys)) == 4
        assert [n.status for n in db.session.scalars(select(Notification))] == ["sent"] * 4
