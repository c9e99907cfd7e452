"""Reminders to residents through the notification outbox, each sent once per
condition, plus alley-wide notices to the alley's group robots.

Conditions and their once-only keys (`Reminder.key`, unique in the database):
- `low_balance:<account>:<last top-up posting id>` — a prepaid balance at or above
  zero but below the alley's threshold (ReminderSettings, else REMINDER_LOW_BALANCE_CENTS);
- `negative:<account>:<last top-up posting id>` — a prepaid balance below zero;
  (a new top-up makes a new key, so the next time the balance runs low it reminds again);
- `monthly_end:<account>:<end date>` — a monthly card ending within N days;
- `statement:<account>:<month>` — the newest statement is ready (not for an empty
  month: no balance, no movement, no session);
- `published:<alley>:<month>` — a month published (公示): to the alley's webhook
  contacts (group robots) at level 1.

Other services reach a resident through the same channels with `queue_to_account`
(the overstay nudge: kind `overstay`, no Reminder row; the session messages of
chargers.services.billing.messages: `session_start`, `full`, `stopped`, `failed`, with
Reminder rows keyed per session; `queue_start` for the power-budget queue and
`budget_stop` for its over-limit stop).

Residents hear by WeChat subscription message (the openid under the official account),
SMS and/or e-mail (ResidentChannels; WeChat and SMS through chargers.services.alerts.wechat
and .sms at delivery), each message in the resident's own language (ResidentChannels.language,
else the deployment's). A condition with no channel is still recorded (shown on the
account pages). `run` commits (one transaction per reminder).

Quiet hours: a message queued between 22:00 and 07:00 in the alley's local time waits in
the outbox until 07:00 local (its `next_attempt_at`), unless the resident welcomes night
messages (ResidentChannels.night) or it is about safety (`safety=True`: a stop for a
fault, fire or a dangerous battery, the battery-risk warning), which always goes at once.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.lists import format_list
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ...constants import AccountKind, NotificationStatus
from ...extensions import db
from ...labels import ENDING_LABELS, RISK_REASON_LABELS
from ...models import (
    Alley,
    Contact,
    LedgerAccount,
    LedgerEntry,
    MonthClose,
    Notification,
    Posting,
    Reminder,
    ReminderSettings,
    ResidentAccount,
    ResidentChannels,
    Statement,
    User,
)
from ...settings import ReminderRule
from .. import scope
from ..alerts import notify
from ..devices import alleys
from ..errors import Invalid
from . import accounts as residents
from . import ledger

KINDS = ("low_balance", "negative", "monthly_end", "statement", "published")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
LANGUAGES = ("zh", "en")  # the languages messages are written in (translations/)
quiet_until = notify.quiet_until  # the quiet hours (22:00–07:00 local) live with the outbox


# --- settings ----------------------------------------------------------------------

def alley_settings(alley_id: int, rule: ReminderRule) -> tuple[int, int]:
    """(low-balance threshold in fen, days before a monthly card ends) of an alley."""
    row = db.session.get(ReminderSettings, alley_id)
    if row is None:
        return rule.low_balance_cents, rule.monthly_days
    return row.low_balance_cents, row.monthly_days


def set_alley_settings(user: User | None, slug: str, low_balance_cents: int,
                       monthly_days: int, now: datetime) -> ReminderSettings:
    """An alley's own thresholds. Audited. Commits."""
    alley = alleys.get_alley(user, slug)
    scope.check_alley(user, alley)
    if not isinstance(low_balance_cents, int) or not 0 <= low_balance_cents <= 1_000_000:
        raise Invalid("reminder.threshold")
    if not isinstance(monthly_days, int) or not 0 <= monthly_days <= 60:
        raise Invalid("reminder.days")
    row = db.session.get(ReminderSettings, alley.id) or ReminderSettings(alley_id=alley.id)
    row.low_balance_cents, row.monthly_days = low_balance_cents, monthly_days
    db.session.add(row)
    ledger.audit("reminder.settings", alley.id, user.id if user else None, now,
                 low_balance_cents=low_balance_cents, monthly_days=monthly_days)
    db.session.commit()
    return row


def channels(account_id: int) -> ResidentChannels | None:
    return db.session.get(ResidentChannels, account_id)


def set_channels(user: User | None, account_id: int, email: str, sms: bool,
                 now: datetime, *, wechat: bool | None = None, night: bool | None = None,
                 language: str | None = None) -> ResidentChannels:
    """Staff set how a resident hears reminders and session messages (an account of
    their alleys): see `save_channels`. Audited. Commits."""
    acc = residents.get_account(user, account_id)
    return save_channels(acc, user.id if user else None, email, sms, now, wechat=wechat,
                         night=night, language=language)


def save_channels(acc: ResidentAccount, by: int | None, email: str, sms: bool,
                  now: datetime, *, wechat: bool | None = None, night: bool | None = None,
                  language: str | None = None) -> ResidentChannels:
    """How a resident hears reminders and session messages: e-mail address (may be
    empty), SMS to the account's phone, WeChat subscription messages (needs the openid
    the official account's OAuth gave), night messages welcome, the language (None:
    unchanged; "": the deployment's). `by`: the staff member, None the resident (who
    proved the account on 'My account'). Audited. Commits."""
    email = (email or "").strip()
    if email and not EMAIL_RE.match(email):
        raise Invalid("reminder.email")
    if sms and not acc.phone:
        raise Invalid("reminder.no_phone")
    row = db.session.get(ResidentChannels, acc.id) or ResidentChannels(resident_id=acc.id)
    if wechat and not row.wechat_openid:
        raise Invalid("reminder.no_wechat")
    if language is not None and language not in ("", *LANGUAGES):
        raise Invalid("reminder.language", languages=", ".join(LANGUAGES))
    row.email, row.sms = email, bool(sms)
    if wechat is not None:
        row.wechat = bool(wechat)
    if night is not None:
        row.night = bool(night)
    if language is not None:
        row.language = language
    db.session.add(row)
    ledger.audit("reminder.channels", acc.alley_id, by, now, account=acc.id,
                 email=bool(email), sms=bool(sms), wechat=bool(row.wechat),
                 night=bool(row.night), language=row.language or "", by_resident=by is None)
    db.session.commit()
    return row


def chosen(ch: ResidentChannels | None, acc: ResidentAccount) -> list[str]:
    """The channels a resident has chosen that can reach them now (for the pages)."""
    if ch is None:
        return []
    out = []
    if ch.email:
        out.append("email")
    if ch.sms and acc.phone:
        out.append("sms")
    if ch.wechat and ch.wechat_openid:
        out.append("wechat")
    return out


def for_account(account_id: int, limit: int = 20) -> list[Reminder]:
    """The reminders an account was sent, newest first (for the account pages)."""
    return list(db.session.scalars(select(Reminder).where(Reminder.resident_id == account_id)
                                   .order_by(Reminder.id.desc()).limit(limit)))


@dataclass(frozen=True)
class Delivery:
    """What became of one message on one channel, as the outbox knows it: `state` is
    held (waiting for the alley's quiet hours to end, until `at`), waiting (due, the
    worker sends it next), retrying (tried `tries` times, next try `at`, `error`),
    sent (at `at`) or failed (given up, `error`: the last refusal)."""

    channel: str
    state: str
    at: datetime | None
    tries: int
    error: str | None


@dataclass(frozen=True)
class AccountMessage:
    """A message to the resident and its deliveries (empty: no channel chosen, or
    queued before deliveries were linked to it)."""

    reminder: Reminder
    deliveries: tuple[Delivery, ...]


def _delivery(n: Notification, now: datetime) -> Delivery:
    at = _aware(n.next_attempt_at)
    if n.status == NotificationStatus.SENT:
        return Delivery(n.channel, "sent", _aware(n.sent_at), n.attempts, None)
    if n.status == NotificationStatus.FAILED:
        return Delivery(n.channel, "failed", None, n.attempts, n.last_error)
    if n.attempts:
        return Delivery(n.channel, "retrying", at, n.attempts, n.last_error)
    if at is not None and at > now and (n.payload or {}).get("quiet_zone"):
        return Delivery(n.channel, "held", at, 0, None)
    return Delivery(n.channel, "waiting", at, 0, None)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def messages_of(account_id: int, now: datetime, limit: int = 20) -> list[AccountMessage]:
    """The messages an account was sent, newest first, each with what the outbox did
    with it on each channel (for the staff account page: "why didn't I get it?").
    An outbox row belongs to a message by the key in its payload; older rows (queued
    before the key was kept) by kind, time, channel and the account's current address."""
    rows = for_account(account_id, limit)
    if not rows:
        return []
    targets = _addresses(account_id)
    by_ref, unref = _outbox_rows(rows)
    out = []
    for r in rows:
        mine = by_ref.get(r.key) or [
            n for n in unref if n.reason == r.kind[:16] and n.created_at == r.created_at
            and n.channel in (r.channels or []) and n.target in targets]
        out.append(AccountMessage(r, tuple(_delivery(n, now) for n in mine)))
    return out


def _addresses(account_id: int) -> set[str]:
    """The account's phone, e-mail and WeChat openid as they are now."""
    acc = db.session.get(ResidentAccount, account_id)
    ch = db.session.get(ResidentChannels, account_id)
    found = [acc.phone] if acc else []
    if ch:
        found += [ch.email, ch.wechat_openid]
    return {t for t in found if t}


def _outbox_rows(rows: list[Reminder]) -> tuple[dict[str, list[Notification]], list[Notification]]:
    """The resident outbox rows queued with these messages: by the message key in their
    payload, and those without one."""
    found = db.session.scalars(select(Notification).where(
        Notification.alert_id.is_(None), Notification.created_at.in_({r.created_at for r in rows}),
        Notification.reason.in_({r.kind[:16] for r in rows})).order_by(Notification.id)).all()
    by_ref: dict[str, list[Notification]] = {}
    unref: list[Notification] = []
    for n in found:
        ref = (n.payload or {}).get("ref")
        (by_ref.setdefault(ref, []) if ref else unref).append(n)
    return by_ref, unref


# --- the run -----------------------------------------------------------------------

def yuan(fen: int) -> str:
    """Fen as yuan for a message: "12.30", "-0.50"."""
    return _yuan(fen)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _compose(kind: str, data: dict) -> tuple[str, str]:
    """Subject and text of a reminder, in the current locale."""
    if kind == "session_start":
        return (_("Charging started: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: charging started at %(time)s. "
                  "Balance: %(balance)s yuan.", **data))
    if kind == "full":
        return (_("Fully charged: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: your battery is full "
                  "(%(time)s, %(energy)s kWh). Please unplug and move your bike so a "
                  "neighbour can charge.", **data))
    if kind == "stopped":
        return (_("Charging stopped: %(reason)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: charging stopped at %(time)s: "
                  "%(reason)s. Energy: %(energy)s kWh.", **data))
    if kind == "failed":
        return (_("Charging failed: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: the charge stopped at %(time)s "
                  "with almost no energy (%(reason)s). Nothing is charged. Please check the "
                  "plug and the charger, then try again.", **data))
    if kind == "queue_start":
        return (_("Your turn to charge: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: it is your turn in the queue "
                  "(%(time)s). Charging starts now.", **data))
    if kind == "low_balance":
        return (_("Charging balance low: %(balance)s yuan", **data),
                _("%(alley)s, account %(household)s: your charging balance is %(balance)s "
                  "yuan, below %(threshold)s yuan. Please top up with the staff.", **data))
    if kind == "negative":
        return (_("Charging balance below zero: %(balance)s yuan", **data),
                _("%(alley)s, account %(household)s: your charging balance is %(balance)s "
                  "yuan. Please top up with the staff before charging again.", **data))
    if kind == "monthly_end":
        return (_("Monthly charging card ends %(until)s", **data),
                _("%(alley)s, account %(household)s: your monthly charging card ends on "
                  "%(until)s. Renew it with the staff.", **data))
    if kind == "statement":
        return (_("Charging statement for %(month)s", **data),
                _("%(alley)s, account %(household)s: your statement for %(month)s is ready. "
                  "Balance at the end of the month: %(balance)s yuan. See %(url)s", **data))
    if kind == "overstay":
        return (_("Please move your bike: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: your bike has been fully charged "
                  "for %(minutes)s minutes. Please move it so a neighbour can charge.", **data))
    if kind == "battery_risk":
        if data.get("seen"):
            return (_("Battery or charger may be faulty: %(pile)s port %(port)s", **data),
                    _("%(alley)s, pile %(pile)s, port %(port)s: while charging (%(time)s) we "
                      "saw: %(seen)s. We have asked the pile to stop the charge. The battery "
                      "or charger may be faulty. Please stop using it and have it checked.",
                      **data))
        return (_("Battery or charger may be faulty: %(pile)s port %(port)s", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: the battery or charger may be "
                  "faulty. Please stop using it and have it checked.", **data))
    if kind == "budget_stop":
        return (_("Charging stopped: the alley's supply is overloaded (%(pile)s port "
                  "%(port)s)", **data),
                _("%(alley)s, pile %(pile)s, port %(port)s: the alley's shared power supply "
                  "was over its limit, so your charge was stopped. Please try again later.",
                  **data))
    return (_("Public accounts for %(month)s", **data),
            _("%(alley)s: the charging piles' accounts for %(month)s are published: "
              "%(url)s", **data))


def _remember(key: str, kind: str, alley_id: int, resident_id: int | None, data: dict,
              now: datetime) -> Reminder | None:
    """The reminder row, or None when this condition was already reminded."""
    r = Reminder(key=key, kind=kind, alley_id=alley_id, resident_id=resident_id, data=data,
                 channels=[], created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(r)
    except IntegrityError:
        return None
    return r


def seen_words(reasons) -> str:
    """Risk reasons (constants.RiskReason) as a list in the current language: "功率过大和
    端口温升过快", "Power too high and Port heats up"."""
    return format_list([str(RISK_REASON_LABELS.get(r, r)) for r in reasons],
                       locale=get_locale())


def queue_to_account(acc: ResidentAccount, kind: str, data: dict, language: str,
                     now: datetime, *, safety: bool = False, ref: str | None = None) -> list[str]:
    """Queue the message of `kind` (written from `data`) to a resident account's
    channels (ResidentChannels): WeChat subscription message to its openid, SMS to its
    phone, its e-mail address; in the resident's language (else `language`). Outside
    safety, a message in the alley's quiet hours waits until they end unless the
    resident welcomes night messages. A `reason` in `data` is an ending code
    (services/charging/endings.py), written in words here. Returns the channels queued
    (none when the account has none). `ref`: the Reminder's key, kept in each outbox
    row's payload so the account page can tell what became of it. No commit."""
    ch = db.session.get(ResidentChannels, acc.id)
    lang = ch.language if ch is not None and ch.language in LANGUAGES else language
    with force_locale(lang):
        data = dict(data)
        if "reason" in data:
            data["reason"] = str(ENDING_LABELS.get(data["reason"], data["reason"]))
        if "reasons" in data:  # risk reasons (constants.RiskReason): what was seen
            data["seen"] = seen_words(data.pop("reasons"))
        subject, text = _compose(kind, data)
    params = {k: str(v) for k, v in data.items() if k != "url"}
    at, quiet = now, {}
    if not safety and not (ch is not None and ch.night):
        zone = alleys.zone(acc.alley) if acc.alley else ZoneInfo("UTC")
        at = quiet_until(now, zone)
        quiet = {"quiet_zone": zone.key}  # a retry keeps to the quiet hours too
    if ref:
        quiet = {**quiet, "ref": ref}
    rows = []
    for channel in chosen(ch, acc):
        if channel == "wechat":
            rows.append(("wechat", ch.wechat_openid, {"template": kind, "params": params,
                                                      "language": lang, **quiet}))
        elif channel == "sms":
            rows.append(("sms", acc.phone, {"template": kind, "params": params, **quiet}))
        else:
            rows.append(("email", ch.email, {**quiet}))
    return _outbox(kind, subject, text, rows, now, at)


def _outbox(kind: str, subject: str, text: str, rows: list[tuple[str, str, dict]],
            now: datetime, at: datetime | None = None) -> list[str]:
    subject = " ".join(subject.split())[:255]
    for channel, target, payload in rows:
        db.session.add(Notification(alert_id=None, contact_id=None, reason=kind[:16],
                                    channel=channel, target=target, subject=subject,
                                    body=text, payload=payload, status=NotificationStatus.PENDING,
                                    attempts=0, next_attempt_at=at or now, created_at=now))
    return [c for c, _t, _p in rows]


def _queue(r: Reminder, acc: ResidentAccount | None, rule: ReminderRule, now: datetime) -> None:
    if acc is not None:
        r.channels = queue_to_account(acc, r.kind, r.data, rule.paging.language, now,
                                      ref=r.key)
        return
    with force_locale(rule.paging.language):
        subject, text = _compose(r.kind, dict(r.data))
    rows = [("webhook", c.target, notify.webhook_body(
                notify.webhook_flavour(c.webhook_format, c.target), text))
            for c in db.session.scalars(select(Contact).where(
                Contact.alley_id == r.alley_id, Contact.level == 1,
                Contact.channel == "webhook").order_by(Contact.id))]
    r.channels = _outbox(r.kind, subject, text, rows, now)


def run(now: datetime, rule: ReminderRule | None = None) -> Counter:
    """Remind every condition not yet reminded; counts by kind. Commits."""
    rule = rule or ReminderRule()
    counts: Counter = Counter()
    base = rule.paging.public_base_url.rstrip("/")
    alley_by_id = {a.id: a for a in db.session.scalars(select(Alley))}
    facts = _Facts(_last_topups(), _latest_statements())
    accounts = db.session.scalars(select(ResidentAccount).where(
        ResidentAccount.active.is_(True)).order_by(ResidentAccount.id)).all()
    for acc in accounts:
        alley = alley_by_id[acc.alley_id]
        common = {"alley": alley.name, "household": acc.household or f"#{acc.id}"}
        for kind, key, data in _conditions(acc, alley, facts, rule, base, now):
            r = _remember(key, kind, alley.id, acc.id, {**common, **data}, now)
            if r is not None:
                _queue(r, acc, rule, now)
                counts[kind] += 1
            db.session.commit()
    for mc in db.session.scalars(select(MonthClose).where(MonthClose.published_at.is_not(None))):
        alley = alley_by_id[mc.alley_id]
        data = {"alley": alley.name, "month": mc.month,
                "url": f"{base}/a/{alley.slug}/accounts/{mc.month}"}
        r = _remember(f"published:{alley.id}:{mc.month}", "published", alley.id, None, data,
                      now)
        if r is not None:
            _queue(r, None, rule, now)
            counts["published"] += 1
        db.session.commit()
    return counts


@dataclass
class _Facts:
    """What one run reads once for every account: the id of each account's last top-up
    (a new top-up makes a new low-balance condition) and its latest statement."""

    last_topup: dict
    latest_statement: dict


def _last_topups() -> dict:
    return dict(db.session.execute(
        select(LedgerAccount.resident_id, func.max(Posting.id))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(Posting, Posting.id == LedgerEntry.posting_id)
        .where(Posting.kind == "topup", LedgerAccount.resident_id.is_not(None))
        .group_by(LedgerAccount.resident_id)).all())


def _latest_statements() -> dict:
    return {row.resident_id: row for row in db.session.scalars(
        select(Statement).where(Statement.id.in_(
            select(func.max(Statement.id)).group_by(Statement.resident_id))))}


def _conditions(acc: ResidentAccount, alley: Alley, facts: _Facts, rule: ReminderRule,
                base: str, now: datetime) -> list[tuple[str, str, dict]]:
    """The account's conditions worth a reminder now: (kind, key once per condition,
    data for the message)."""
    low, days = alley_settings(alley.id, rule)
    wanted: list[tuple[str, str, dict]] = []
    if acc.kind == AccountKind.PREPAID:
        bal = ledger.balance(acc)
        top = facts.last_topup.get(acc.id, 0)
        if bal < 0:
            wanted.append(("negative", f"negative:{acc.id}:{top}", {"balance": _yuan(bal)}))
        elif bal < low:
            wanted.append(("low_balance", f"low_balance:{acc.id}:{top}",
                           {"balance": _yuan(bal), "threshold": _yuan(low)}))
    if (acc.kind == AccountKind.MONTHLY and acc.monthly_until is not None
            and now < acc.monthly_until <= now + timedelta(days=days)):
        until = acc.monthly_until.astimezone(alleys.zone(alley)).strftime("%Y-%m-%d %H:%M")
        wanted.append(("monthly_end", f"monthly_end:{acc.id}:{until[:10]}", {"until": until}))
    st = facts.latest_statement.get(acc.id)
    if st is not None and _has_news(st):
        wanted.append(("statement", f"statement:{acc.id}:{st.month}",
                       {"month": st.month, "balance": _yuan(st.closing_cents),
                        "url": f"{base}/a/{alley.slug}/account"}))
    return wanted


def _has_news(st: Statement) -> bool:
    """An empty month: nothing to tell."""
    return bool(st.closing_cents or st.opening_cents or st.sessions or st.topups_cents
                or st.charges_cents or st.refunds_cents or st.adjustments_cents)
