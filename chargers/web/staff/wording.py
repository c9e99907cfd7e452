"""Words for staff pages: labels of the codes the services store (rejection reasons,
notification reasons and states, channels), and the page-language reading of the
audit notes the services write in plain English ("stop port 7 (c-…)", "level 1: …").

Presentation only: a note this module does not recognise is shown as it was written,
so a new wording in a service never breaks a page, it is only left untranslated.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import default_exceptions

from ..i18n import ago, local_time
from . import bp

REJECTION_LABELS = {
    "bad_topic": _l("Unknown topic"), "unknown_kind": _l("Unknown message kind"),
    "sender_mismatch": _l("Sent by another pile"), "unknown_pile": _l("Pile not registered"),
    "oversized": _l("Too large"), "malformed": _l("Not valid JSON"),
    "invalid": _l("Fields not as the protocol says"), "port_out_of_range": _l("No such port"),
    "replay": _l("Old sequence number (replay)"), "error": _l("Failed to process"),
}
NOTIFY_REASON_LABELS = {"new": _l("first page"), "resend": _l("reminder"),
                        "escalation": _l("escalation")}
NOTIFY_STATUS_LABELS = {"pending": _l("waiting to send"), "sent": _l("delivered"),
                        "failed": _l("gave up")}
CHANNEL_LABELS = {"webhook": _l("Group robot"), "email": _l("E-mail")}

CODE_LABELS = {
    "smoke": _l("Smoke"), "over_temperature": _l("Over-temperature"),
    "over_current": _l("Over-current"), "overload": _l("Overload"),
    "ground_fault": _l("Ground fault"), "relay_stuck": _l("Relay stuck"),
    "offline": _l("Offline"), "over_voltage": _l("Over-voltage"),
    "under_voltage": _l("Under-voltage"), "meter_failure": _l("Meter failure"),
    "communication": _l("Communication fault"), "other": _l("Other fault"),
    "data_loss": _l("Possible data loss"),
}
SEVERITY_LABELS = {"critical": _l("Critical"), "major": _l("Major"), "minor": _l("Minor"),
                   "warning": _l("Warning")}
STATUS_LABELS = {"active": _l("Unacknowledged"), "acknowledged": _l("Acknowledged"),
                 "cleared": _l("Cleared"), "open": _l("Open"), "all": _l("All")}
ACTION_LABELS = {"stop": _l("Stop charging"), "disable": _l("Disable"),
                 "enable": _l("Enable"), "reset": _l("Reset pile")}
PORT_STATUS_LABELS = {
    "available": _l("available"), "occupied": _l("occupied"), "charging": _l("charging"),
    "finishing": _l("finishing"), "faulted": _l("faulted"), "unavailable": _l("unavailable"),
}
EVENT_LABELS = {
    "raised": _l("raised"), "repeated": _l("reported again"), "acknowledged": _l("acknowledged"),
    "resolved": _l("resolved"), "cleared_by_device": _l("cleared by the pile"),
    "cleared_online": _l("pile back online"),
    "cleared_filled": _l("missing messages arrived late"), "flap": _l("flap (nobody paged)"),
    "cutoff_sent": _l("cut-off sent"), "command": _l("command sent"),
    "command_accepted": _l("command done"), "command_rejected": _l("command refused"),
    "command_timeout": _l("command unanswered"), "notified": _l("notified"),
    "renotified": _l("notified again"), "escalated": _l("escalated"),
    "stale_clear_ignored": _l("late clear ignored"), "stale_raise_ignored": _l("late report ignored"),
}
COMMAND_STATUS_LABELS = {"pending": _l("waiting to send"), "sent": _l("sent, waiting for the pile"),
                         "accepted": _l("done"), "rejected": _l("refused by the pile"),
                         "timeout": _l("no answer")}
_COMMAND = re.compile(r"^(stop|enable|disable|reset) (pile|port (\d+))"
                      r"(?: \(c-[0-9a-f]+\))?(?:: (.*))?$", re.S)
_LEVEL = re.compile(r"^level ([\d+]+): (.*)$", re.S)
_FLAP = re.compile(r"^cleared within (\d+) s: nobody paged$")
_MISSING = re.compile(r"^(\d+) message\(s\) missing$")
_AT = re.compile(r"^(last heard|raised at|cleared at) (\d{4}-\d\d-\d\dT[\d:.+\-]+)$")


def _where(port: str | None) -> str:
    return _("port %(n)d", n=int(port)) if port else _("whole pile")


def command_detail(detail: str | None) -> str:
    """A command's outcome detail: our own words translated, the pile's words as sent."""
    if not detail:
        return ""
    if detail in ("no ack from the pile", "never published"):
        # The outcome label ("no answer") already says it; add only what it cannot.
        return "" if detail == "no ack from the pile" else _("never sent: broker away")
    if detail.startswith("late ack; "):
        rest = detail.removeprefix("late ack; ")
        return _("answered late") + (f" · {rest}" if rest else "")
    return detail


def _one_command(text: str) -> str | None:
    m = _COMMAND.match(text.strip())
    if m is None:
        return None
    action, _whole, port, detail = m.groups()
    out = f"{ACTION_LABELS[action]} · {_where(port)}"
    more = command_detail(detail)
    return f"{out} · {more}" if more else out


def _time(iso: str) -> str:
    try:
        return local_time(datetime.fromisoformat(iso), "MM-dd HH:mm:ss")
    except ValueError:
        return iso


@bp.app_template_filter("event_note")
def event_note(note: str | None, action: str = "") -> str:
    """An alert event's note in the page's language. Staff's own notes (acknowledge,
    resolve) and anything else not written by a service are shown as written."""
    if not note or action in ("acknowledged", "resolved"):
        return note or ""
    parts = [_one_command(p) for p in note.split(", ")]
    if all(parts):
        return "; ".join(parts)
    if m := _LEVEL.match(note):
        who = m.group(2)
        return _("level %(n)s: %(who)s", n=m.group(1),
                 who=_("nobody (no contacts)") if who == "no contacts" else who)
    if m := _FLAP.match(note):
        return _("cleared within %(n)d s: nobody paged", n=int(m.group(1)))
    if m := _MISSING.match(note):
        return _("%(n)d messages missing", n=int(m.group(1)))
    if m := _AT.match(note):
        kind, t = m.group(1), _time(m.group(2))
        if kind == "last heard":
            return _("last heard %(t)s", t=t)
        return _("reported at %(t)s", t=t) if kind == "raised at" else _("cleared at %(t)s", t=t)
    return note


@bp.app_template_filter("command_detail")
def _command_detail_filter(detail: str | None) -> str:
    return command_detail(detail)


# What the services say when they refuse (their messages are English, for the API),
# as staff read it on a page. Unknown messages are shown as they are.
_REFUSALS = {
    "port: required to stop a session": _l("Stopping a charge needs a port."),
    "port: a reset is for the whole pile": _l("A reset is for the whole pile."),
    "note: say what was found or done": _l("Say what was found or done."),
    "the alert is already cleared": _l("The alert is already cleared."),
    "target: an http(s) URL for a webhook": _l("A group robot needs its webhook address (http:// or https://)."),
    "target: an e-mail address": _l("Enter an e-mail address."),
    "target: at most 512 characters": _l("The address is too long (at most 512 characters)."),
    "name: 1 to 64 characters": _l("The name: 1 to 64 characters."),
    "name: required": _l("Enter a name."),
    "slug and name are required": _l("Enter a slug and a name."),
    "slug: lower-case letters, digits and dashes, up to 64":
        _l("The slug: lower-case letters, digits and dashes, up to 64."),
    "tariff_cents_per_kwh: 0 to 100000": _l("The tariff: 0 to 100000 fen per kWh."),
    "id: 1-64 letters, digits, '_' or '-'": _l("The serial: 1 to 64 letters, digits, '_' or '-'."),
    "label: must not be empty": _l("The label must not be empty."),
    "no such alert": _l("No such alert."), "no such alert on this pile": _l("No such alert."),
    "no such alley": _l("No such alley."), "no such pile": _l("No such pile."),
    "no such contact": _l("No such contact."), "no such command": _l("No such command."),
    "no such port": _l("No such port."),
}
_REFUSAL_PATTERNS = (
    (re.compile(r"^port: 1 to (\d+)$"), lambda m: _("The port: 1 to %(n)d.", n=int(m[1]))),
    (re.compile(r"^ports: 1 to (\d+)$"), lambda m: _("Ports: 1 to %(n)d.", n=int(m[1]))),
    (re.compile(r"^timezone: unknown zone '(.*)'$"),
     lambda m: _("Unknown time zone %(zone)s (e.g. Asia/Shanghai).", zone=m[1])),
    (re.compile(r"^alley '(.*)' exists$"), lambda m: _("The alley %(slug)s already exists.", slug=m[1])),
    (re.compile(r"^pile '(.*)' exists$"), lambda m: _("The pile %(id)s already exists.", id=m[1])),
    (re.compile(r"^no such alley '(.*)'$"), lambda m: _("No such alley.")),
)


# Werkzeug's stock English paragraphs (and our own last-resort text) under an error
# page's heading: nothing a reader needs beyond the heading.
_GENERIC = {exc.description for exc in default_exceptions.values()} | {"internal error"}


@bp.app_template_filter("say")
def say(message: str | None) -> str:
    """A service's refusal (DomainError.message) in the page's language."""
    if not message or message in _GENERIC:
        return ""  # the error page's heading already says it, in the page's language
    if message in _REFUSALS:
        return str(_REFUSALS[message])
    for pattern, words in _REFUSAL_PATTERNS:
        if m := pattern.match(message):
            return words(m)
    return message


@bp.app_template_filter("ago_phrase")
def ago_phrase(value: datetime | None) -> str:
    """'3 min ago' (or 'just now'), for a time shown beside its clock reading."""
    t = ago(value)
    if not t or t == _("just now"):
        return t
    return _("%(t)s ago", t=t)


@bp.context_processor
def _wording() -> dict:
    return {"code_labels": CODE_LABELS, "severity_labels": SEVERITY_LABELS,
            "status_labels": STATUS_LABELS, "action_labels": ACTION_LABELS,
            "command_status_labels": COMMAND_STATUS_LABELS, "event_labels": EVENT_LABELS,
            "port_status_labels": PORT_STATUS_LABELS,
            "rejection_labels": REJECTION_LABELS, "notify_reason_labels": NOTIFY_REASON_LABELS,
            "notify_status_labels": NOTIFY_STATUS_LABELS, "channel_labels": CHANNEL_LABELS}
