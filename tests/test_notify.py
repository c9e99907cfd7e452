"""Notifications: the outbox delivered to a real local webhook receiver (http.server)
and a real local SMTP server (aiosmtpd), each failing twice before taking the
message; re-sending and escalation shown by running the jobs with a chosen `now`."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from flask import current_app
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import Alert, Alley, Contact, Notification, Pile
from chargers.services.alerts import lifecycle as alerts
from chargers.services.alerts import notify

from .brokers import free_port
from .conftest import bearer

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Receiver:
    """A group-robot stand-in: answers 500 to the first `fail` posts, then 200
    with WeCom's {"errcode": 0} and keeps the JSON bodies."""

    def __init__(self, fail: int = 0, answer: dict | None = None):
        self.fail, self.answer = fail, answer or {"errcode": 0, "errmsg": "ok"}
        self.calls = 0
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                if outer.calls <= outer.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(data))
                out = json.dumps(outer.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=k"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd handler: 451 for the first `fail` messages, then keeps them."""

    def __init__(self, fail: int = 0):
        self.fail, self.calls = fail, 0
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.calls += 1
        if self.calls <= self.fail:
            return "451 Requested action aborted: try again later"
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def receiver():
    r = Receiver(fail=2)
    yield r
    r.close()


@pytest.fixture
def mailbox(app):
    box = Mailbox(fail=2)
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM="alerts@chargers.test")
    yield box
    controller.stop()


def add_contacts(*rows):
    alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
    for name, level, channel, target, fmt in rows:
        db.session.add(Contact(alley_id=alley.id, name=name, level=level, channel=channel,
                               target=target, webhook_format=fmt))
    db.session.commit()


def smoke(now=T0, port=3):
    alerts.on_fault(db.session.get(Pile, "P-1"), port, "smoke", True, None, None, now, now,
                    rules=settings.alerts(current_app.config))
    db.session.commit()
    return db.session.scalars(select(Alert).order_by(Alert.id.desc())).first()


def deliver(now):
    return all_jobs()["notify-deliver"].func(now, None)


def test_webhook_and_email_delivered_after_two_failures(alley_with_pile, receiver, mailbox,
                                                        app_ctx):
    add_contacts(("Wang", 1, "webhook", receiver.url, "auto"),
                 ("Li", 1, "email", "li@example.org", "auto"))
    alert = smoke()
    rows = db.session.scalars(select(Notification)).all()
    assert len(rows) == 2 and {n.status for n in rows} == {"pending"}

    assert deliver(at(0)) == "0 sent, 2 failed"  # first failure each
    assert deliver(at(10)) is None  # backing off: nothing due yet
    assert deliver(at(30)) == "0 sent, 2 failed"  # second failure after 30 s
    assert deliver(at(60)) is None  # the next wait doubled (60 s)
    assert deliver(at(90)) == "2 sent, 0 failed"
    assert deliver(at(1000)) is None  # delivered once

    for n in db.session.scalars(select(Notification)):
        assert (n.status, n.attempts, n.sent_at) == ("sent", 3, at(90))
    assert receiver.calls == 3 and mailbox.calls == 3
    [body] = receiver.bodies
    assert body["msgtype"] == "text" and "smoke" in body["text"]["content"]
    assert f"/staff/alerts/{alert.id}" in body["text"]["content"]
    [(rcpt, msg)] = mailbox.messages
    assert rcpt == ["li@example.org"] and msg["From"] == "alerts@chargers.test"
    subject = str(make_header(decode_header(msg["Subject"])))
    assert "smoke" in subject and "烟雾" in subject and "Lane" in subject


def test_gives_up_after_max_attempts_and_robot_errors_count_as_failures(app, alley_with_pile,
                                                                        app_ctx):
    app.config["NOTIFY_MAX_ATTEMPTS"] = 3
    refusing = Receiver(answer={"errcode": 93000, "errmsg": "invalid webhook url"})
    try:
        add_contacts(("Wang", 1, "webhook", refusing.url, "wecom"))
        smoke()
        for t in (0, 30, 90, 1000, 5000):
            deliver(at(t))
        n = db.session.scalars(select(Notification)).one()
        assert n.status == "failed" and n.attempts == 3 and "93000" in n.last_error
    finally:
        refusing.close()


def test_webhook_body_suits_each_robot():
    assert notify.webhook_flavour("auto", "https://open.feishu.cn/open-apis/bot/v2/hook/x") == "feishu"
    assert notify.webhook_flavour("auto", "https://oapi.dingtalk.com/robot/send?access_token=x") \
        == "dingtalk"
    assert notify.webhook_flavour("auto", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send") == "wecom"
    assert notify.webhook_flavour("feishu", "https://example.org/hook") == "feishu"
    assert notify.webhook_body("feishu", "hi") == {"msg_type": "text", "content": {"text": "hi"}}
    assert notify.webhook_body("dingtalk", "hi") == {"msgtype": "text", "text": {"content": "hi"}}
    assert notify.webhook_body("wecom", "hi") == {"msgtype": "text", "text": {"content": "hi"}}


def test_resend_and_escalation_by_the_clock(alley_with_pile, app_ctx):
    # (alley_with_pile made the admin `root`, who acknowledges at the end)
    add_contacts(("Wang", 1, "webhook", "https://qyapi.weixin.qq.com/x", "auto"),
                 ("Chief", 2, "email", "chief@example.org", "auto"))
    alert = smoke()
    job = all_jobs()["alerts-escalate"].func

    def sent():
        return [(n.reason, n.target.split("@")[0].split("/")[-1])
                for n in db.session.scalars(select(Notification).order_by(Notification.id))]

    assert sent() == [("new", "x")]
    assert job(at(5 * 60), None) is None
    assert job(at(10 * 60), None) == "1 re-sent, 0 escalated"
    assert job(at(12 * 60), None) is None
    assert job(at(15 * 60), None) == "0 re-sent, 1 escalated"
    assert job(at(16 * 60), None) is None
    assert job(at(20 * 60), None) == "1 re-sent, 0 escalated"  # now to both levels
    assert sent() == [("new", "x"), ("resend", "x"), ("escalation", "chief"),
                      ("resend", "x"), ("resend", "chief")]
    db.session.refresh(alert)
    actions = [e.action for e in alert.events]
    assert actions.count("renotified") == 2 and actions.count("escalated") == 1

    # acknowledged: nobody is chased any more
    alerts.acknowledge(_admin(), alert.id, now=at(21 * 60))
    assert job(at(60 * 60), None) is None
    assert len(sent()) == 5


def _admin():
    from chargers.models import User

    return db.session.scalar(select(User).where(User.name == "root"))


def test_non_critical_alerts_are_not_chased(alley_with_pile, app_ctx):
    add_contacts(("Wang", 1, "webhook", "https://qyapi.weixin.qq.com/x", "auto"))
    alerts.on_fault(db.session.get(Pile, "P-1"), 1, "overload", True, None, None, T0, T0,
                    rules=settings.alerts(current_app.config))
    db.session.commit()
    assert all_jobs()["alerts-notify"].func(at(61), None) == "1 alert(s) paged"
    assert all_jobs()["alerts-escalate"].func(at(3600), None) is None
    assert db.session.query(Notification).count() == 1


def test_contacts_api(app, client, admin, make_staff, alley_with_pile):
    _, token = admin
    r = client.post("/api/v1/alleys/lane/contacts", headers=bearer(token), json={
        "name": "Wang", "channel": "webhook", "target": "https://oapi.dingtalk.com/robot/send?x=1"})
    assert r.status_code == 201 and r.json["level"] == 1 and r.json["webhook_format"] == "auto"
    r = client.post("/api/v1/alleys/lane/contacts", headers=bearer(token), json={
        "name": "Li", "channel": "email", "target": "not-an-address", "level": 2})
    assert r.status_code == 422
    r = client.post("/api/v1/alleys/lane/contacts", headers=bearer(token), json={
        "name": "Li", "channel": "sms", "target": "123"})
    assert r.status_code == 422
    assert [c["name"] for c in client.get("/api/v1/alleys/lane/contacts",
                                          headers=bearer(token)).json] == ["Wang"]
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    _, theirs = make_staff("other-staff", ["other"])
    assert client.get("/api/v1/alleys/lane/contacts", headers=bearer(theirs)).status_code == 404
    with app.app_context():
        cid = db.session.scalars(select(Contact)).one().id
        smoke()  # a notification to this contact stays after the contact goes
    assert client.delete(f"/api/v1/contacts/{cid}", headers=bearer(theirs)).status_code == 404
    assert client.delete(f"/api/v1/contacts/{cid}", headers=bearer(token)).status_code == 204
    with app.app_context():
        assert db.session.query(Contact).count() == 0
        n = db.session.scalars(select(Notification)).one()
        assert n.contact_id is None and n.target.startswith("https://oapi.dingtalk.com")
        assert n.payload == {"msgtype": "text", "text": {"content": n.body}}


def test_one_broken_message_does_not_stop_the_others(app, alley_with_pile, receiver, app_ctx):
    receiver.fail = 0
    add_contacts(("Broken", 1, "email", "x@example.org", "auto"),
                 ("Wang", 1, "webhook", receiver.url, "auto"))
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nobody listening
    smoke()
    assert deliver(at(0)) == "1 sent, 1 failed"
    bad = db.session.scalars(select(Notification).where(Notification.channel == "email")).one()
    assert bad.status == "pending" and bad.attempts == 1 and "SMTP" in bad.last_error
