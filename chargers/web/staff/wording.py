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

_ACTIONS = {"stop": _l("Stop charging"), "disable": _l("Disable"), "enable": _l("Enable"),
            "reset": _l("Reset pile")}
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
    out = f"{_ACTIONS[action]} · {_where(port)}"
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


@bp.app_template_filter("ago_phrase")
def ago_phrase(value: datetime | None) -> str:
    """'3 min ago' (or 'just now'), for a time shown beside its clock reading."""
    t = ago(value)
    if not t or t == _("just now"):
        return t
    return _("%(t)s ago", t=t)


@bp.context_processor
def _wording() -> dict:
    from .alerts import CODE_LABELS, SEVERITY_LABELS

    return {"code_labels": CODE_LABELS, "severity_labels": SEVERITY_LABELS,
            "rejection_labels": REJECTION_LABELS, "notify_reason_labels": NOTIFY_REASON_LABELS,
            "notify_status_labels": NOTIFY_STATUS_LABELS, "channel_labels": CHANNEL_LABELS}
