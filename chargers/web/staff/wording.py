"""Words for staff pages: the label tables of chargers.labels (re-exported here for
templates and views), and the reading of stored codes with their data in the page's
language through Babel.

Nothing here reads a sentence: services store codes and structured data, and the words
of people and piles (`note`, a command's `pile_detail`) are shown as written. History
entries from before codes were stored have only their note, shown as written.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from ...labels import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    CODE_LABELS,
    COMMAND_OUTCOME_LABELS,
    COMMAND_STATUS_LABELS,
    CUTOFF_LABELS,
    EVENT_LABELS,
    GUARD_REASON_LABELS,
    NOTIFY_REASON_LABELS,
    NOTIFY_STATUS_LABELS,
    PORT_STATUS_LABELS,
    PREVIEW_SAMPLE_LABELS,
    PRICING_RULE_LABELS,
    REJECTION_LABELS,
    RISK_REASON_LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
)
from ..i18n import ago, local_time
from . import bp

__all__ = ["ACTION_LABELS", "CHANNEL_LABELS", "CODE_LABELS", "COMMAND_OUTCOME_LABELS",
           "COMMAND_STATUS_LABELS", "EVENT_LABELS", "NOTIFY_REASON_LABELS",
           "NOTIFY_STATUS_LABELS", "PORT_STATUS_LABELS", "REJECTION_LABELS", "SEVERITY_LABELS",
           "STATUS_LABELS", "ago_phrase", "command_outcome", "event_text"]


def _where(port: int | None) -> str:
    return _("port %(n)d", n=int(port)) if port else _("whole pile")


def _command(c: dict) -> str:
    action = c.get("action", "")
    return f"{ACTION_LABELS.get(action, action)} · {_where(c.get('port'))}"


def _outcome(outcome: str | None, pile_words: str | None) -> str:
    ours = COMMAND_OUTCOME_LABELS.get(outcome) if outcome else None
    return " · ".join(str(p) for p in (ours, pile_words) if p)


def _time(iso: str) -> str:
    try:
        return local_time(datetime.fromisoformat(iso), "MM-dd HH:mm:ss")
    except (TypeError, ValueError):
        return str(iso)


def _data_text(data: dict) -> str:
    """The structured part of a history entry (see the services that write it)."""
    if "tapered" in data:  # a no_taper mid withdrawn (services/safety/limits.py)
        return _("session %(ref)s tapered to full: not a pack that never tapers",
                 ref=data.get("session_ref", data.get("session")))
    if "superseded" in data:  # a mid withdrawn when the same charge graded high
        return _("session %(ref)s graded high: followed in its high-risk alert",
                 ref=data.get("session_ref", data.get("session")))
    if "session" in data:  # the backend's limits and risk grade, about one session
        why = ([str(RISK_REASON_LABELS.get(r, r)) for r in data.get("reasons") or ()]
               or [str(GUARD_REASON_LABELS.get(data.get("limit"), data.get("limit") or ""))])
        return _("session %(ref)s: %(why)s", ref=data.get("session_ref", data["session"]),
                 why=", ".join(why))
    if "commands" in data:  # the automatic cut-off
        return "; ".join(_command(c) for c in data["commands"])
    if "command" in data:  # a command sent, or its outcome
        return _command(data["command"])
    if "levels" in data:  # contacts paged
        who = ", ".join(data.get("contacts") or ()) or _("nobody (no contacts)")
        return _("level %(n)s: %(who)s", n="+".join(map(str, data["levels"])), who=who)
    if "late" in data:  # a cut-off confirmed
        return _("confirmed %(n)d s after it was asked", n=int(data.get("seconds") or 0))
    if "sms" in data:  # a cut-off not confirmed in time
        return _("no confirmation in %(n)d s · SMS to %(k)d phone(s)", n=int(data["seconds"]),
                 k=int(data["sms"]))
    if "debounce_s" in data:
        return _("cleared within %(n)d s: nobody paged", n=int(data["debounce_s"]))
    if "missing" in data:
        return _("%(n)d messages missing", n=int(data["missing"]))
    if "last_heard" in data:
        return _("last heard %(t)s", t=_time(data["last_heard"]))
    if "raised_at" in data:
        return _("reported at %(t)s", t=_time(data["raised_at"]))
    if "cleared_at" in data:
        return _("cleared at %(t)s", t=_time(data["cleared_at"]))
    return ""


@bp.app_template_filter("event_text")
def event_text(event) -> str:
    """An alert-history entry beyond its action label, in the page's language: its
    data read through the label tables, then the note (staff's or the pile's own
    words) as written."""
    data = event.data or {}
    note = event.note or ""
    if "command" in data:
        # A command's outcome: our word on it (late, never sent), then the pile's.
        text, note = _command(data["command"]), _outcome(data.get("outcome"), note)
    else:
        text = _data_text(data)
    return " · ".join(p for p in (text, note) if p)


@bp.app_template_filter("command_outcome")
def command_outcome(cmd) -> str:
    """What a command's status label does not say: our word on its outcome (answered
    late, never sent), then the pile's own words."""
    return _outcome(cmd.outcome, cmd.pile_detail)


@bp.app_template_filter("ago_phrase")
def ago_phrase(value: datetime | None) -> str:
    """'3 min ago' (or 'just now'), for a time shown beside its clock reading."""
    t = ago(value)
    if not t or t == _("just now"):
        return t
    return _("%(t)s ago", t=t)


def job_description(job) -> str:
    """A job's description in the page's language (its English one if not in the table)."""
    from ...labels import JOB_LABELS

    label = JOB_LABELS.get(job.id)
    return str(label) if label is not None else job.description


def job_schedule(job, tz) -> str:
    """When a job runs, in words: "every 10 s", "every hour at :05", "every day at 03:30"
    (a cron time, kept in UTC by the scheduler, shown in `tz`)."""
    from datetime import UTC, datetime

    from ...labels import SCHEDULE_UNIT_LABELS

    args = dict(job.trigger_args)
    if job.trigger == "interval":
        parts = [str(SCHEDULE_UNIT_LABELS[k]) % {"n": v} for k, v in args.items()
                 if k in SCHEDULE_UNIT_LABELS]
        return " ".join(parts) or _("continuously")
    if job.trigger == "cron" and set(args) <= {"minute", "hour"}:
        minute = int(args.get("minute", 0))
        if "hour" not in args:
            return _("every hour at :%(m)02d", m=minute)
        at = datetime.now(UTC).replace(hour=int(args["hour"]), minute=minute).astimezone(tz)
        return _("every day at %(t)s", t=at.strftime("%H:%M"))
    return f"{job.trigger} " + ", ".join(f"{k}={v}" for k, v in args.items())


def job_summary(stored: str | None) -> str:
    """A job run's summary in the page's language, from its code and counts; a line
    kept without a code (an error's message) is shown as written."""
    from ...jobs import read_summary
    from ...labels import BILLING_LABELS, JOB_COUNT_LABELS, JOB_RESULT_LABELS, JOB_RESULT_LISTS

    data = read_summary(stored)
    if data is None:
        return ""
    label = JOB_RESULT_LABELS.get(data.get("code", ""))
    if label is None:
        return data.get("text", "")
    counts = data.get("counts") or {}
    try:
        text = str(label) % counts
    except (KeyError, TypeError, ValueError):
        text = str(label)
    if data["code"] in JOB_RESULT_LISTS and counts:
        words = []
        for key, n in counts.items():
            kind = JOB_COUNT_LABELS.get(key) or BILLING_LABELS.get(key)
            words.append(_("%(kind)s %(n)d", kind=str(kind) if kind is not None else key, n=n))
        text = f"{text} " + _(", ").join(words)
    if data.get("items"):
        text += " · " + ", ".join(str(i) for i in data["items"])
    return text


@bp.context_processor
def _wording() -> dict:
    return {"code_labels": CODE_LABELS, "severity_labels": SEVERITY_LABELS,
            "status_labels": STATUS_LABELS, "action_labels": ACTION_LABELS,
            "command_status_labels": COMMAND_STATUS_LABELS, "event_labels": EVENT_LABELS,
            "port_status_labels": PORT_STATUS_LABELS,
            "rejection_labels": REJECTION_LABELS, "notify_reason_labels": NOTIFY_REASON_LABELS,
            "notify_status_labels": NOTIFY_STATUS_LABELS, "channel_labels": CHANNEL_LABELS,
            "cutoff_labels": CUTOFF_LABELS, "job_description": job_description,
            "job_schedule": job_schedule, "job_summary": job_summary,
            "preview_sample_labels": PREVIEW_SAMPLE_LABELS,
            "pricing_rule_labels": PRICING_RULE_LABELS}
