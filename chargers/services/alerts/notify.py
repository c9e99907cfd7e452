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
- sms, wechat: residents' messages (chargers.services.billing.reminders) through Aliyun
  SendSms (.sms) and WeChat subscription messages (.wechat). A resident's message carries
  `quiet_zone` in its payload when it must keep to the quiet hours: its retries do too.

Messages are written in the deployment's language (`settings.Paging.language`,
Chinese by default) through Babel and the label tables of chargers.labels, with the
codes themselves in English beside the words.

Who commits: `add_contact`, `delete_contact` and `deliver_due` commit;
`queue_for_alert` adds and flushes inside its caller's transaction. Settings come in
as `settings.Paging` (composing) and `settings.Delivery` (sending).
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ...constants import CutoffState, NotificationStatus
from ...extensions import db
from ...labels import CODE_LABELS, CUTOFF_LABELS, NOTIFY_SUBJECT_PREFIXES, SEVERITY_LABELS
from ...models import Alert, Alley, Contact, Notification, User, utcnow
from ...settings import Delivery, Paging
from .. import scope
from ..devices import alleys
from ..errors import Invalid
from .outbound import DeliveryError, PermanentDeliveryError, fetch
from .outbound import check_public as _check_public

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email")
WEBHOOK_FORMATS = ("auto", "wecom", "dingtalk", "feishu")
LEVELS = (1, 2)

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
        raise Invalid("contact.name_length")
    if data.channel not in CHANNELS:
        raise Invalid("contact.channel_unknown", choices=", ".join(CHANNELS))
    if data.level not in LEVELS:
        raise Invalid("contact.level_range")
    if data.webhook_format not in WEBHOOK_FORMATS:
        raise Invalid("contact.webhook_format_unknown", choices=", ".join(WEBHOOK_FORMATS))
    if data.channel == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("contact.webhook_target")
    elif "@" not in target or any(c.isspace() for c in target):
        raise Invalid("contact.email_target")
    if len(target) > 512:
        raise Invalid("contact.target_length", max=512)
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
    contact = scope.get_in_alley(user, Contact, contact_id, "contact.not_found")
    alley = contact.alley
    db.session.delete(contact)
    db.session.commit()
    return alley.slug


def public_contacts(alley_id: int) -> list[Contact]:
    """Who looks after the alley's piles, as residents see them (name and phone)."""
    stmt = (select(Contact).where(Contact.alley_id == alley_id, Contact.public.is_(True))
            .order_by(Contact.level, Contact.id))
    return list(db.session.scalars(stmt))


def send_test(user: User | None, contact_id: int, now: datetime, *, paging: Paging,
              delivery: Delivery) -> tuple[bool, str]:
    """Send a test message to a contact in scope now, without queueing, in
    `paging.language`: (delivered, the failure's reason or ""). Changes nothing stored."""
    contact = scope.get_in_alley(user, Contact, contact_id, "contact.not_found")
    alley = contact.alley
    when = now.astimezone(alleys.zone(alley, paging.default_timezone))
    with force_locale(paging.language):
        subject = _("[Test] %(alley)s", alley=alley.name)
        text = "\n".join((_("%(alley)s: this is a test notification; nothing to do.",
                            alley=alley.name), f"{when:%Y-%m-%d %H:%M:%S}"))
    try:
        if contact.channel == "webhook":
            send_webhook(contact.target, webhook_body(
                webhook_flavour(contact.webhook_format, contact.target), text), delivery)
        else:
            send_email(contact.target, subject, text, delivery)
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


def compose(alert: Alert, reason: str, now: datetime, paging: Paging) -> tuple[str, str]:
    """(subject, text) of a message about `alert` in `paging.language`, codes in
    English beside their labels, times in the alley's zone, with a link to the alert."""
    with force_locale(paging.language):
        return _compose(alert, reason, now, paging)


def _label(table: dict, code: str) -> str:
    return str(table[code]) if code in table else code


def _compose(alert: Alert, reason: str, now: datetime, paging: Paging) -> tuple[str, str]:
    pile = alert.pile
    alley = pile.alley
    tz = alleys.zone(alley, paging.default_timezone)
    where = _("whole pile") if alert.port is None else _("port %(n)d", n=alert.port)
    code = f"{_label(CODE_LABELS, alert.code)} ({alert.code})"
    sev = f"{_label(SEVERITY_LABELS, alert.severity)} {alert.severity}"
    prefix = str(NOTIFY_SUBJECT_PREFIXES.get(reason) or "")
    subject = f"{prefix}[{sev}] {code} · {alley.name} {pile.label} {where}"
    subject = " ".join(subject.split())  # one line: e-mail headers take no line breaks
    base = paging.public_base_url.rstrip("/")
    lines = [
        subject,
        _("Time: %(t)s (%(zone)s)", t=f"{alert.raised_at.astimezone(tz):%Y-%m-%d %H:%M:%S}",
          zone=alley.timezone),
        _("Pile: %(label)s (%(id)s) · %(where)s", label=pile.label, id=pile.id, where=where),
        *([_("Location: %(note)s", note=pile.location_note)] if pile.location_note else []),
        _("Count: %(n)d", n=alert.count),
    ]
    if alert.value is not None:
        lines.append(_("Reading: %(value)s", value=f"{alert.value:g}"))
    if alert.cutoff != CutoffState.NONE:
        lines.append(_("Cut-off: %(state)s", state=_label(CUTOFF_LABELS, alert.cutoff)))
    if reason != "new":
        minutes = int((now - alert.raised_at).total_seconds() // 60)
        lines.append(_("Unacknowledged for %(n)d min", n=minutes))
    lines.append(f"{base}/staff/alerts/{alert.id}")
    return subject, "\n".join(lines)


def queue_for_alert(alert: Alert, level: int | tuple[int, ...], reason: str,
                    now: datetime, paging: Paging) -> int:
    """One outbox row per contact of the alert's alley at `level`; records it on the
    alert (notified_at / last_notified_at / escalated_at and an AlertEvent).
    Adds and flushes, never commits."""
    levels = (level,) if isinstance(level, int) else tuple(level)
    stmt = select(Contact).where(Contact.alley_id == alert.pile.alley_id, Contact.level.in_(levels))
    contacts = list(db.session.scalars(stmt.order_by(Contact.level, Contact.id)))
    subject, text = compose(alert, reason, now, paging)
    for c in contacts:
        body = webhook_body(webhook_flavour(c.webhook_format, c.target), text) \
            if c.channel == "webhook" else {}
        db.session.add(Notification(alert_id=alert.id, contact_id=c.id, reason=reason,
                                    channel=c.channel, target=c.target, subject=subject[:255],
                                    body=text, payload=body, status=NotificationStatus.PENDING, attempts=0,
                                    next_attempt_at=now, created_at=now))
    if reason in ("escalation", "cutoff"):
        alert.escalated_at = alert.escalated_at or now
    else:
        alert.notified_at = alert.notified_at or now
        alert.last_notified_at = now
    action = {"new": "notified", "resend": "renotified", "escalation": "escalated",
              "cutoff": "escalated"}[reason]
    alert.record(action, now, data={"levels": list(levels),
                                    "contacts": [c.name for c in contacts]})
    db.session.flush()
    return len(contacts)


def queue_message(alley_id: int, level: int | tuple[int, ...], reason: str, subject: str,
                  text: str, now: datetime) -> int:
    """One outbox row per contact of the alley at `level` for a message that is not
    about an alert (e.g. an inspection reminder); `reason` says why (a short code).
    Returns how many were queued. Adds and flushes, never commits."""
    levels = (level,) if isinstance(level, int) else tuple(level)
    stmt = select(Contact).where(Contact.alley_id == alley_id, Contact.level.in_(levels))
    contacts = list(db.session.scalars(stmt.order_by(Contact.level, Contact.id)))
    subject = " ".join(subject.split())[:255]  # one line: e-mail headers take no breaks
    for c in contacts:
        body = webhook_body(webhook_flavour(c.webhook_format, c.target), text) \
            if c.channel == "webhook" else {}
        db.session.add(Notification(alert_id=None, contact_id=c.id, reason=reason,
                                    channel=c.channel, target=c.target, subject=subject,
                                    body=text, payload=body, status=NotificationStatus.PENDING, attempts=0,
                                    next_attempt_at=now, created_at=now))
    db.session.flush()
    return len(contacts)


# --- delivering --------------------------------------------------------------------


def send_webhook(url: str, body: dict, delivery: Delivery) -> None:
    """POST the JSON; a non-2xx status or a robot's non-zero errcode/code fails."""
    _check_public(url, delivery.webhook_allow_private)
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    timeout = delivery.webhook_timeout_s
    raw = fetch(req, timeout)
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


def send_email(to: str, subject: str, text: str, delivery: Delivery) -> None:
    """A plain-text e-mail over SMTP, with STARTTLS / SSL and login when configured."""
    cfg = delivery
    if not cfg.smtp_host:
        raise DeliveryError("SMTP_HOST is not set")
    msg = EmailMessage()
    msg["From"] = cfg.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    security = cfg.smtp_security
    cls = smtplib.SMTP_SSL if security == "ssl" else smtplib.SMTP
    try:
        with cls(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout_s) as smtp:
            if security == "starttls":
                smtp.starttls()
            if cfg.smtp_user:
                smtp.login(cfg.smtp_user, cfg.smtp_password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {exc}") from None


# Quiet hours for residents' messages, in the alley's local time: [QUIET_FROM,
# QUIET_UNTIL), passing midnight (chargers.services.billing.reminders queues by them).
QUIET_FROM, QUIET_UNTIL = time(22, 0), time(7, 0)


def quiet_until(at: datetime, zone: ZoneInfo) -> datetime:
    """When a resident's message due at `at` may go: `at` outside the quiet hours
    (QUIET_FROM–QUIET_UNTIL in `zone`), else the next QUIET_UNTIL there (in `at`'s zone)."""
    local = at.astimezone(zone)
    t = local.time()
    if QUIET_UNTIL <= t < QUIET_FROM:
        return at
    day = local.date() if t < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=zone).astimezone(at.tzinfo)


def backoff(attempts: int, delivery: Delivery) -> timedelta:
    """Wait before the next try after `attempts` failures: base·2^(n-1), capped."""
    seconds = delivery.backoff_base_s * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, delivery.backoff_max_s))


def _send(n: Notification, delivery: Delivery) -> None:
    if n.channel == "webhook":
        send_webhook(n.target, n.payload, delivery)
    elif n.channel == "email":
        send_email(n.target, n.subject, n.body, delivery)
    elif n.channel == "sms":  # residents' reminders (chargers.services.billing.reminders)
        from . import sms

        cfg = delivery.sms
        try:
            sms.send_sms(cfg, n.target, cfg.templates.get(n.payload.get("template", ""), ""),
                         n.payload.get("params", {}), out_id=f"n{n.id}")
        except sms.SmsError as exc:
            raise DeliveryError(str(exc)) from None
    elif n.channel == "wechat":  # residents' subscription messages (billing.reminders)
        from . import wechat

        payload = n.payload or {}
        try:
            wechat.send(delivery.wechat, n.target, payload.get("template", ""),
                        payload.get("params", {}), n.subject,
                        allow_private=delivery.webhook_allow_private)
        except wechat.WechatError as exc:
            raise (PermanentDeliveryError if exc.permanent else DeliveryError)(str(exc)) \
                from None
    else:
        raise DeliveryError(f"unknown channel {n.channel!r}")


def deliver_due(now: datetime | None, delivery: Delivery, limit: int = 50) -> tuple[int, int]:
    """Try every pending notification whose time has come, oldest first; commit after
    each. A failure is retried after `backoff(attempts)`, and given up (`failed`)
    after NOTIFY_MAX_ATTEMPTS. Returns (sent, failed tries)."""
    now = now or utcnow()
    max_attempts = delivery.max_attempts
    stmt = (select(Notification.id)
            .where(Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    ids = list(db.session.scalars(stmt))
    db.session.commit()  # hold no transaction while talking to the network
    sent = failed = 0
    for nid in ids:
        n = db.session.get(Notification, nid)
        if n is None or n.status != NotificationStatus.PENDING:
            continue
        try:
            _send(n, delivery)
        except Exception as exc:  # one bad message must not stop the others
            n.attempts += 1
            n.last_error = str(exc)[:1000]
            if n.attempts >= max_attempts or getattr(exc, "permanent", False):
                n.status = NotificationStatus.FAILED
            else:
                n.next_attempt_at = now + backoff(n.attempts, delivery)
                zone = (n.payload or {}).get("quiet_zone") if n.channel != "webhook" else None
                if zone:  # a resident's message: its retry keeps to the quiet hours
                    n.next_attempt_at = quiet_until(n.next_attempt_at, ZoneInfo(zone))
            failed += 1
            log.warning("notification %s to %s failed (try %s): %s", n.id, n.target,
                        n.attempts, exc)
        else:
            n.attempts += 1
            n.status = NotificationStatus.SENT
            n.sent_at = now
            n.last_error = None
            sent += 1
        db.session.commit()
    return sent, failed


def notifications_for(alert_id: int) -> list[Notification]:
    """The outbox rows of one alert, oldest first (for its page)."""
    stmt = select(Notification).where(Notification.alert_id == alert_id).order_by(Notification.id)
    return list(db.session.scalars(stmt))
