"""Reminders: each condition reminded once, delivered by e-mail through a real local
SMTP server (aiosmtpd) and by SMS to a local HTTP server standing in for Aliyun's
SendSms endpoint, which checks the RPC signature v1 (HMAC-SHA1) of every request;
published months noticed to the alley's group robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import Alley, Contact, Notification, Posting, Reminder, User, utcnow
from chargers.services.alerts import sms
from chargers.services.billing import accounts, monthly_close, reminders
from chargers.settings import SmsConfig

from .billing_support import finished, set_tariff
from .brokers import free_port
from .test_monthly_close import local
from .test_settlement import make_account

KEY_ID, SECRET = "LTAI-test-id", "test-secret/+="


def test_signature_matches_the_documented_example():
    """Alibaba Cloud's own worked example (DescribeRegions, testid / testsecret)."""
    params = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
              "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
              "SignatureVersion": "1.0", "TimeStamp": "2016-02-23T12:46:24Z",
              "Version": "2014-05-26"}
    assert sms.string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
        "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-"
        "4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z"
        "%26Version%3D2014-05-26")
    assert sms.signature("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    assert sms.percent_encode("a b*~é") == "a%20b%2A~%C3%A9"


class SmsEndpoint:
    """Aliyun SendSms stand-in: recomputes the signature of each POST independently
    (RFC 3986 encoding, sorted, HMAC-SHA1 with secret + "&") and answers like Aliyun:
    {"Code": "OK", ...} or {"Code": "SignatureDoesNotMatch"} with HTTP 400."""

    def __init__(self, fail: int = 0):
        self.fail, self.calls, self.accepted, self.nonces = fail, 0, [], set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                params = dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=True))
                outer.calls += 1
                code, status = outer.check(params, self.headers.get("Content-Type", ""))
                if code == "OK" and outer.calls <= outer.fail:
                    code, status = "isp.SYSTEM_ERROR", 500
                if code == "OK":
                    outer.accepted.append(params)
                out = json.dumps({"Code": code, "Message": code, "RequestId": "r",
                                  "BizId": f"biz{outer.calls}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, params: dict, content_type: str) -> tuple[str, int]:
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return "InvalidParameter", 400
        needed = {"AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod",
                  "SignatureNonce", "SignatureVersion", "Timestamp", "Version",
                  "PhoneNumbers", "SignName", "TemplateCode", "TemplateParam", "Signature"}
        if needed - set(params):
            return "MissingParameter", 400
        if (params["Action"], params["Version"], params["SignatureMethod"],
                params["SignatureVersion"]) != ("SendSms", "2017-05-25", "HMAC-SHA1", "1.0"):
            return "InvalidParameter", 400
        if params["AccessKeyId"] != KEY_ID:
            return "InvalidAccessKeyId.NotFound", 404
        datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        if params["SignatureNonce"] in self.nonces:
            return "SignatureNonceUsed", 400
        self.nonces.add(params["SignatureNonce"])
        given = params.pop("Signature")

        def enc(v):
            return quote(v, safe="~-_.")

        canon = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
        to_sign = "POST&%2F&" + enc(canon)
        want = base64.b64encode(hmac.new((SECRET + "&").encode(), to_sign.encode(),
                                         hashlib.sha1).digest()).decode()
        if given != want:
            return "SignatureDoesNotMatch", 400
        json.loads(params["TemplateParam"])
        return "OK", 200

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def outboxes(app):
    endpoint = SmsEndpoint(fail=1)
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM="bills@chargers.test",
                      SMS_ENDPOINT=endpoint.url, SMS_ACCESS_KEY_ID=KEY_ID,
                      SMS_ACCESS_KEY_SECRET=SECRET, SMS_SIGN_NAME="小巷充电",
                      SMS_TEMPLATE_LOW_BALANCE="SMS_1001", SMS_TEMPLATE_NEGATIVE="SMS_1002",
                      SMS_TEMPLATE_MONTHLY_END="SMS_1003", SMS_TEMPLATE_STATEMENT="SMS_1004",
                      PUBLIC_BASE_URL="https://charge.example.org")
    yield endpoint, box
    controller.stop()
    endpoint.close()


def remind(now):
    return all_jobs()["reminders"].func(now, None)


def deliver(now):
    return all_jobs()["notify-deliver"].func(now, None)


def subject(msg) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def test_sms_refusals_are_errors(outboxes):
    endpoint, _ = outboxes
    cfg = SmsConfig(endpoint=endpoint.url, access_key_id=KEY_ID, access_key_secret="wrong",
                    sign_name="x")
    with pytest.raises(sms.SmsError, match="SignatureDoesNotMatch"):
        sms.send_sms(cfg, "13800001234", "SMS_1", {"a": "1"})
    with pytest.raises(sms.SmsError, match="not configured"):
        sms.send_sms(SmsConfig(endpoint=endpoint.url), "13800001234", "SMS_1", {})


def test_each_condition_reminded_once_by_email_and_sms(app, client, admin, alley_with_pile,
                                                      outboxes):
    endpoint, box = outboxes
    user, token = admin
    acc = make_account(client, token, ["C-5"], phone="13800005555")
    month_acc = make_account(client, token, ["M-1"], kind="monthly", phone="13900009999")
    with app.app_context():
        boss = db.session.get(User, user.id)
        now = utcnow()
        reminders.set_alley_settings(boss, "lane", 500, 3, now)
        reminders.set_channels(boss, acc, "wang@example.org", True, now)
        reminders.set_channels(boss, month_acc, "li@example.org", False, now)
        m = accounts.get_account(boss, month_acc)
        m.monthly_from, m.monthly_until = now - timedelta(days=20), now + timedelta(days=2)
        db.session.commit()
        accounts.top_up(boss, acc, 600, "cash", "R1", now)
        set_tariff("lane", electricity_cents_per_kwh=100)
        finished("P-1", "s1", "C-5", 30, 2000, start=now - timedelta(hours=2))  # 2.00 yuan
        db.session.commit()
        all_jobs()["settle"].func(now, None)

        assert remind(now) == "1 low_balance, 1 monthly_end"
        assert remind(now) is None and remind(now + timedelta(minutes=10)) is None
        # Residents' messages wait out the quiet hours (22:00-07:00 in the alley's zone:
        # at most 9 h); the SMS endpoint fails once: retried later.
        deliver(now)
        deliver(now + timedelta(hours=9))
        deliver(now + timedelta(hours=11))
        assert db.session.scalar(select(Notification).where(
            Notification.status != "sent")) is None

        # E-mail through the real SMTP server.
        to = sorted((rcpt[0], subject(msg)) for rcpt, msg in box.messages)
        assert to[0][0] == "li@example.org" and "月卡" in to[0][1]
        assert to[1] == ("wang@example.org", "充电余额不足：4.00 元")
        body = box.messages[0][1].get_payload(decode=True).decode()
        assert "3-201" in body
        # SMS: signed SendSms with the low-balance template; the monthly account has no SMS.
        assert len(endpoint.accepted) == 1
        p = endpoint.accepted[0]
        assert (p["PhoneNumbers"], p["TemplateCode"], p["SignName"]) == (
            "13800005555", "SMS_1001", "小巷充电")
        assert json.loads(p["TemplateParam"]) == {"alley": "Lane", "household": "3-201",
                                                  "balance": "4.00", "threshold": "5.00"}

        # The balance goes below zero (the top-up reversed): a new condition, once.
        topup = db.session.scalar(select(Posting).where(Posting.kind == "topup"))
        accounts.reverse(boss, topup.id, "bounced", now)
        assert remind(now) == "1 negative"
        assert remind(now) is None
        # A new top-up, then low again: reminded again (a new condition).
        accounts.top_up(boss, acc, 500, "cash", "R2", now)
        assert remind(now) == "1 low_balance"
        assert remind(now) is None
        deliver(now + timedelta(hours=3))
        deliver(now + timedelta(hours=12))  # past the quiet hours wherever `now` falls
        assert [x["TemplateCode"] for x in endpoint.accepted] == ["SMS_1001", "SMS_1002",
                                                                  "SMS_1001"]
        kinds = [r.kind for r in reminders.for_account(acc)]
        assert kinds == ["low_balance", "negative", "low_balance"]


def test_statement_ready_and_published_month_noticed_to_robots(app, client, admin,
                                                               alley_with_pile, outboxes):
    endpoint, box = outboxes
    user, token = admin
    acc = make_account(client, token, ["C-6"], phone="13800006666")
    idle = make_account(client, token, ["C-7"], kind="exempt", phone="13800007777")
    with app.app_context():
        boss = db.session.get(User, user.id)
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        db.session.add(Contact(alley_id=alley.id, name="group", level=1, channel="webhook",
                               target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                               webhook_format="auto"))
        db.session.commit()
        reminders.set_channels(boss, acc, "", True, utcnow())
        reminders.set_channels(boss, idle, "", True, utcnow())
        accounts.top_up(boss, acc, 2000, "cash", "R1", local(2026, 10, 5, 9, 0))
        assert all_jobs()["statements-monthly"].func(local(2026, 11, 1, 3, 0), None)
        now = local(2026, 11, 1, 3, 5)
        assert remind(now) == "1 statement"
        monthly_close.publish(boss, "lane", "2026-10", now)
        assert remind(now) == "1 published"
        assert remind(now) is None
        n = db.session.scalar(select(Notification).where(Notification.reason == "published"))
        assert n.channel == "webhook" and "2026-10" in n.payload["text"]["content"]
        assert "https://charge.example.org/a/lane/accounts/2026-10" in n.body
        st = db.session.scalar(select(Reminder).where(Reminder.kind == "statement"))
        assert st.channels == ["sms"] and st.data["balance"] == "20.00"


def test_account_pages_show_reminders_statements_and_set_channels(app, client, admin,
                                                                  alley_with_pile):
    from .webtools import csrf_from, login, post_form

    user, token = admin
    acc = make_account(client, token, ["C-8"], phone="13800008888", topup=300)
    with app.app_context():
        all_jobs()["statements-monthly"].func(utcnow() + timedelta(days=40), None)
        remind(utcnow())
    login(client, "root")
    r = post_form(client, f"/staff/accounts/{acc}/channels",
                  {"email": "zhao@example.org", "sms": "1"},
                  form_url=f"/staff/billing/accounts/{acc}")
    assert r.status_code == 302
    html = client.get(f"/staff/billing/accounts/{acc}?lang=zh").get_data(as_text=True)
    assert "余额不足" in html and "对账单已出" in html and "zhao@example.org" in html
    assert 'name="sms" value="1" checked' in html
    r = post_form(client, f"/staff/accounts/{acc}/channels", {"email": "not an address"},
                  form_url=f"/staff/billing/accounts/{acc}")
    assert "zhao@example.org" in client.get(f"/staff/billing/accounts/{acc}").get_data(
        as_text=True)
    r = post_form(client, "/staff/months/lane/reminders",
                  {"low_balance": "8", "monthly_days": "5"}, form_url="/staff/months/lane")
    assert r.status_code == 302
    with app.app_context():
        from chargers import settings as s
        assert reminders.alley_settings(1, s.ReminderRule()) == (800, 5)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    page = client.get("/a/lane/account?lang=zh").get_data(as_text=True)
    r = client.post("/a/lane/account?lang=zh", data={"card": "C-8", "phone_last4": "8888",
                                                      "csrf_token": csrf_from(page)})
    html = r.get_data(as_text=True)
    assert "月度对账单" in html and "期末 ¥3.00" in html and "余额不足" in html
