"""Notifications: an outbox of messages to alley contacts, delivered by the worker.

Queueing (`queue_for_alert`) only writes Notification rows, inside whatever
transaction raised the alert; `deliver_due` (job `notify-deliver`) sends them with
retries and exponential backoff, so a slow or broken receiver never holds up the
ingest.

Channels:
- webhook: a JSON POST suited to group robots. WeCom and DingTalk take
  {"msgtype": "text", "text": {"content": ...}}, Feishu/Lark
  {"msg_type": "text", "content": {"text": ...}}. The contact's `webhook_format`
  picks one; `auto` goes by the URL's host (WeCom's shape for unknown hosts).
- email: plain text over SMTP (smtplib; SMTP_* config).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import smtplib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Alert, Alley, Contact, Notification, User, utcnow
from . import alleys, scope
from .errors import Invalid, NotFound

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
WEBHOOK_FORMATS = ("auto", "wecom", "dingtalk", "feishu")
LEVELS = (1, 2)

SEVERITY_ZH = {"critical": "严重", "major": "重要", "minor": "次要", "warning": "提示"}
CODE_ZH = {
    "smoke": "烟雾", "over_temperature": "过温", "over_current": "过流", "overload": "过载",
    "ground_fault": "漏电/接地故障", "relay_stuck": "继电器粘连", "offline": "离线",
    "over_voltage": "过压", "under_voltage": "欠压", "meter_failure": "计量故障",
    "communication": "通信故障", "other": "其他故障",
    "data_loss": "可能丢失数据",
    "report_burning": "居民报修：焦味或冒烟", "report_no_power": "居民报修：不通电",
    "report_damaged": "居民报修：插座损坏", "report_other": "居民报修：其他问题",
}
REASON_ZH = {"new": "", "resend": "【未确认·重发】", "escalation": "【升级】"}
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")


# --- contacts ----------------------------------------------------------------------


@dataclass
class ContactInput:
    """A contact as staff enter it."""

    name: str
    channel: str
    target: str
    level: int = 1
    webhook_format: str = "auto"
    # One contact setting: with `public`, name and phone show on the residents' pages.
    phone: str = ""
    public: bool = False


def _alley(user: User | None, slug: str) -> Alley:
    return alleys.get_alley(user, slug)


def list_contacts(user: User | None, slug: str) -> list[Contact]:
    """The alley's contacts, level 1 first."""
    alley = _alley(user, slug)
    stmt = select(Contact).where(Contact.alley_id == alley.id).order_by(Contact.level, Contact.id)
    return list(db.session.scalars(stmt))


def add_contact(user: User | None, slug: str, data: ContactInput) -> Contact:
    """A new contact of an alley in scope (validated). Commits."""
    alley = _alley(user, slug)
    name, target = (data.name or "").strip(), (data.target or "").strip()
    if not name or len(name) > 64:
        raise Invalid("name: 1 to 64 characters")
    if data.channel not in CHANNELS:
        raise Invalid(f"channel: one of {', '.join(CHANNELS)}")
    if data.level not in LEVELS:
        raise Invalid("level: 1 (first) or 2 (escalation)")
    if data.webhook_format not in WEBHOOK_FORMATS:
        raise Invalid(f"webhook_format: one of {', '.join(WEBHOOK_FORMATS)}")
    if data.channel == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("target: an http(s) URL for a webhook")
    elif "@" not in target or any(c.isspace() for c in target):
        raise Invalid("target: an e-mail address")
    if len(target) > 512:
        raise Invalid("target: at most 512 characters")
    phone = (data.phone or "").strip()
    if phone and not PHONE_RE.match(phone):
        raise Invalid("contact.phone")
    if data.public and not phone:
        raise Invalid("contact.public_needs_phone")
    contact = Contact(alley_id=alley.id, name=name, channel=data.channel, target=target,
                      level=data.level, webhook_format=data.webhook_format, phone=phone,
                      public=bool(data.public))
    db.session.add(contact)
    db.session.commit()
    return contact


def delete_contact(user: User | None, contact_id: int) -> str:
    """Remove a contact of an alley in scope (its past notifications stay); returns
    the alley's slug. Commits."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("no such contact")
    alley = scope.check_alley(user, db.session.get(Alley, contact.alley_id), "contact")
    db.session.delete(contact)
    db.session.commit()
    return alley.slug


def public_contacts(alley_id: int) -> list[Contact]:
    """Who looks after the alley's piles, as residents see them (name and phone)."""
    stmt = (select(Contact).where(Contact.alley_id == alley_id, Contact.public.is_(True))
            .order_by(Contact.level, Contact.id))
    return list(db.session.scalars(stmt))


def send_test(user: User | None, contact_id: int, now: datetime) -> tuple[bool, str]:
    """Send a test message to a contact in scope now, without queueing: (delivered,
    the failure's reason or ""). Changes nothing stored."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("no such contact")
    alley = scope.check_alley(user, db.session.get(Alley, contact.alley_id), "contact")
    when = now.astimezone(alleys.zone(alley))
    text = (f"【测试 test】{alley.name}：这是一条测试通知，收到即可，无需处理。"
            f"\nThis is a test notification from {alley.name}; nothing to do."
            f"\n{when:%Y-%m-%d %H:%M:%S}")
    try:
        if contact.channel == "webhook":
            send_webhook(contact.target, webhook_body(
                webhook_flavour(contact.webhook_format, contact.target), text))
        else:
            send_email(contact.target, f"【测试 test】{alley.name}", text)
    except DeliveryError as exc:
        return False, str(exc)
    return True, ""


# --- composing ---------------------------------------------------------------------


def webhook_flavour(contact_format: str, url: str) -> str:
    """wecom / dingtalk / feishu: the contact's choice, or guessed from the URL's host."""
    if contact_format in ("wecom", "dingtalk", "feishu"):
        return contact_format
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith(("feishu.cn", "larksuite.com", "larkoffice.com")):
        return "feishu"
    if host.endswith("dingtalk.com"):
        return "dingtalk"
    return "wecom"


def webhook_body(flavour: str, text: str) -> dict:
    """The robot's JSON for a text message."""
    if flavour == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    return {"msgtype": "text", "text": {"content": text}}


def compose(alert: Alert, reason: str, now: datetime) -> tuple[str, str]:
    """(subject, text) of a message about `alert`: Chinese first, codes in English,
    times in the alley's zone, with a link to the alert."""
    pile = alert.pile
    alley = pile.alley
    tz = alleys.zone(alley)
    where = "整桩" if alert.port is None else f"{alert.port}号口"
    code = f"{CODE_ZH.get(alert.code, alert.code)} ({alert.code})"
    sev = f"{SEVERITY_ZH.get(alert.severity, alert.severity)} {alert.severity}"
    subject = f"{REASON_ZH.get(reason, '')}[{sev}] {code} · {alley.name} {pile.label} {where}"
    subject = " ".join(subject.split())  # one line: e-mail headers take no line breaks
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    lines = [
        subject,
        f"时间 time: {alert.raised_at.astimezone(tz):%Y-%m-%d %H:%M:%S} ({alley.timezone})",
        f"桩 pile: {pile.label} ({pile.id}) · {where}",
        *([f"位置 location: {pile.location_note}"] if pile.location_note else []),
        f"次数 count: {alert.count}",
    ]
    if alert.value is not None:
        lines.append(f"读数 value: {alert.value:g}")
    if alert.cutoff_done:
        lines.append("已自动断电 cut off: stop + disable sent")
    if reason != "new":
        minutes = int((now - alert.raised_at).total_seconds() // 60)
        lines.append(f"已 {minutes} 分钟无人确认 unacknowledged for {minutes} min")
    lines.append(f"{base}/staff/alerts/{alert.id}")
    return subject, "\n".join(lines)


def queue_for_alert(alert: Alert, level: int | tuple[int, ...], reason: str,
                    now: datetime) -> int:
    """One outbox row per contact of the alert's alley at `level`; records it on the
    alert (notified_at / last_notified_at / escalated_at and an AlertEvent).
    Adds and flushes, never commits."""
    levels = (level,) if isinstance(level, int) else tuple(level)
    stmt = select(Contact).where(Contact.alley_id == alert.pile.alley_id, Contact.level.in_(levels))
    contacts = list(db.session.scalars(stmt.order_by(Contact.level, Contact.id)))
    subject, text = compose(alert, reason, now)
    for c in contacts:
        body = webhook_body(webhook_flavour(c.webhook_format, c.target), text) \
            if c.channel == "webhook" else {}
        db.session.add(Notification(alert_id=alert.id, contact_id=c.id, reason=reason,
                                    channel=c.channel, target=c.target, subject=subject[:255],
                                    body=text, payload=body, status="pending", attempts=0,
                                    next_attempt_at=now, created_at=now))
    if reason == "escalation":
        alert.escalated_at = now
    else:
        alert.notified_at = alert.notified_at or now
        alert.last_notified_at = now
    action = {"new": "notified", "resend": "renotified", "escalation": "escalated"}[reason]
    who = ", ".join(c.name for c in contacts) or "no contacts"
    alert.record(action, now, note=f"level {'+'.join(map(str, levels))}: {who}")
    db.session.flush()
    return len(contacts)


# --- delivering --------------------------------------------------------------------


class DeliveryError(Exception):
    """The receiver did not take the message; it will be tried again."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot answers directly; a redirect could lead past the address check."""

    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx then surfaces as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def _check_public(url: str) -> None:
    """Refuse a webhook whose host resolves to a private, loopback, link-local or
    reserved address (staff type these URLs; the worker must not become a way into
    the internal network). WEBHOOK_ALLOW_PRIVATE lifts it (development, tests)."""
    if current_app.config.get("WEBHOOK_ALLOW_PRIVATE"):
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"unreachable: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryError(f"refused: {parts.hostname} is a non-public address ({address})")


def send_webhook(url: str, body: dict) -> None:
    """POST the JSON; a non-2xx status or a robot's non-zero errcode/code fails."""
    _check_public(url)
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    timeout = current_app.config["WEBHOOK_TIMEOUT_S"]
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            raw = resp.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        return  # a plain receiver that answered 2xx
    if isinstance(answer, dict):
        # WeCom/DingTalk answer {"errcode": 0}, Feishu {"code": 0}; non-zero = refused.
        for key in ("errcode", "code", "StatusCode"):
            if key in answer and answer[key] not in (0, "0"):
                why = answer.get("errmsg") or answer.get("msg") or ""
                raise DeliveryError(f"robot refused: {key}={answer[key]} {why}".strip())


def send_email(to: str, subject: str, text: str) -> None:
    """A plain-text e-mail over SMTP, with STARTTLS / SSL and login when configured."""
    cfg = current_app.config
    if not cfg["SMTP_HOST"]:
        raise DeliveryError("SMTP_HOST is not set")
    msg = EmailMessage()
    msg["From"] = cfg["SMTP_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    security = cfg["SMTP_SECURITY"]
    cls = smtplib.SMTP_SSL if security == "ssl" else smtplib.SMTP
    try:
        with cls(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["SMTP_TIMEOUT_S"]) as smtp:
            if security == "starttls":
                smtp.starttls()
            if cfg["SMTP_USER"]:
                smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"])
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {exc}") from None


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after `attempts` failures: base·2^(n-1), capped."""
    cfg = current_app.config
    seconds = cfg["NOTIFY_BACKOFF_BASE_S"] * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, cfg["NOTIFY_BACKOFF_MAX_S"]))


def _send(n: Notification) -> None:
    if n.channel == "webhook":
        send_webhook(n.target, n.payload)
    elif n.channel == "email":
        send_email(n.target, n.subject, n.body)
    else:
        raise DeliveryError(f"unknown channel {n.channel!r}")


def deliver_due(now: datetime | None = None, limit: int = 50) -> tuple[int, int]:
    """Try every pending notification whose time has come, oldest first; commit after
    each. A failure is retried after `backoff(attempts)`, and given up (`failed`)
    after NOTIFY_MAX_ATTEMPTS. Returns (sent, failed tries)."""
    now = now or utcnow()
    max_attempts = current_app.config["NOTIFY_MAX_ATTEMPTS"]
    stmt = (select(Notification.id)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    ids = list(db.session.scalars(stmt))
    db.session.commit()  # hold no transaction while talking to the network
    sent = failed = 0
    for nid in ids:
        n = db.session.get(Notification, nid)
        if n is None or n.status != "pending":
            continue
        try:
            _send(n)
        except Exception as exc:  # one bad message must not stop the others
            n.attempts += 1
            n.last_error = str(exc)[:1000]
            if n.attempts >= max_attempts:
                n.status = "failed"
            else:
                n.next_attempt_at = now + backoff(n.attempts)
            failed += 1
            log.warning("notification %s to %s failed (try %s): %s", n.id, n.target,
                        n.attempts, exc)
        else:
            n.attempts += 1
            n.status = "sent"
            n.sent_at = now
            n.last_error = None
            sent += 1
        db.session.commit()
    return sent, failed


def notifications_for(alert_id: int) -> list[Notification]:
    """The outbox rows of one alert, oldest first (for its page)."""
    stmt = select(Notification).where(Notification.alert_id == alert_id).order_by(Notification.id)
    return list(db.session.scalars(stmt))
