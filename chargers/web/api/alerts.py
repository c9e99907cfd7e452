"""Staff calls for alerts, commands and alert contacts (Bearer token, scoped by alley)."""

from __future__ import annotations

from typing import Literal

from flask import current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from ... import settings
from ...models import Alert, Command, Contact, User, utcnow
from ...protocol.codes import COMMAND_ACTIONS, MAX_PORTS
from ...services.alerts import cutoff, notify
from ...services.alerts import lifecycle as alerts
from ...services.alerts.lifecycle import AlertFilter
from ...services.devices import commands
from ..access import token_required
from ..validation import DB_INT_MAX
from . import bp
from .common import body, iso, page_args


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AcknowledgeBody(_Strict):
    note: str | None = Field(None, max_length=2000)


class ResolveBody(_Strict):
    note: str = Field(min_length=1, max_length=2000)
    # The pile still reports the fault: resolve anyway (the note says why).
    override: bool = False


class CommandBody(_Strict):
    action: Literal[COMMAND_ACTIONS]  # type: ignore[valid-type]
    port: int | None = Field(None, ge=1, le=MAX_PORTS)
    alert: int | None = Field(None, ge=1, le=DB_INT_MAX)  # the alert this answers, recorded in its history


class ContactBody(_Strict):
    name: str = Field(min_length=1, max_length=64)
    channel: Literal["webhook", "email"]
    target: str = Field(min_length=3, max_length=512)
    level: Literal[1, 2] = 1
    webhook_format: Literal["auto", "wecom", "dingtalk", "feishu"] = "auto"


def _user_name(user: User | None) -> str | None:
    return user.name if user else None


def alert_json(a: Alert) -> dict:
    """The contract's fields first, then the rest of the alert. The users come from
    the alert's relationships, loaded with the list (services.alerts.lifecycle.list_alerts)."""
    return {"id": a.id, "pile": a.pile_id, "port": a.port, "code": a.code,
            "severity": a.severity, "status": a.status, "raised_at": iso(a.raised_at),
            "count": a.count, "alley": a.pile.alley.slug, "last_seen_at": iso(a.last_seen_at),
            "value": a.value, "acknowledged_at": iso(a.acknowledged_at),
            "acknowledged_by": _user_name(a.acknowledger), "cleared_at": iso(a.cleared_at),
            "cleared_by": _user_name(a.clearer), "note": a.note, "flapped": a.flapped,
            "cutoff": a.cutoff, "cutoff_confirmed_at": iso(a.cutoff_confirmed_at),
            "notified_at": iso(a.notified_at),
            "escalated_at": iso(a.escalated_at)}


def command_json(c: Command) -> dict:
    return {"id": c.id, "pile": c.pile_id, "port": c.port, "action": c.action,
            "status": c.status, "created_at": iso(c.created_at), "sent_at": iso(c.sent_at),
            "answered_at": iso(c.answered_at), "detail": c.detail, "alert": c.alert_id}


def contact_json(c: Contact) -> dict:
    return {"id": c.id, "name": c.name, "level": c.level, "channel": c.channel,
            "target": c.target, "webhook_format": c.webhook_format}


@bp.get("/alerts")
@token_required
def list_alerts(user):
    limit, offset = page_args()
    f = AlertFilter(status=request.args.get("status") or None,
                    alley=request.args.get("alley") or None,
                    severity=request.args.get("severity") or None,
                    pile=request.args.get("pile") or None)
    rows = alerts.list_alerts(user, f, limit=limit, offset=offset)
    return jsonify([alert_json(a) for a in rows])


@bp.get("/alerts/<int:alert_id>")
@token_required
def get_alert(user, alert_id: int):
    a = alerts.get_alert(user, alert_id)
    history = [{"action": e.action, "at": iso(e.at), "by": _user_name(e.user), "note": e.note,
                "data": e.data} for e in a.events]
    cmds = commands.list_commands(user, alert_id=a.id, limit=100)
    sent = [{"id": n.id, "channel": n.channel, "target": n.target, "reason": n.reason,
             "status": n.status, "attempts": n.attempts, "sent_at": iso(n.sent_at),
             "last_error": n.last_error} for n in notify.notifications_for(a.id)]
    return jsonify({**alert_json(a), "history": history,
                    "commands": [command_json(c) for c in cmds], "notifications": sent})


@bp.post("/alerts/<int:alert_id>/acknowledge")
@token_required
def acknowledge(user, alert_id: int):
    note = None
    if request.get_data():
        note = body(AcknowledgeBody).note
    return jsonify(alert_json(alerts.acknowledge(user, alert_id, note)))


@bp.post("/alerts/<int:alert_id>/resolve")
@token_required
def resolve(user, alert_id: int):
    data = body(ResolveBody)
    return jsonify(alert_json(alerts.resolve(user, alert_id, data.note, override=data.override)))


@bp.post("/alerts/<int:alert_id>/cutoff/retry")
@token_required
def cutoff_retry(user, alert_id: int):
    """Try a cut-off that is not confirmed again (as the staff desk's button does)."""
    alert = cutoff.retry(user, alert_id, utcnow(), settings.alerts(current_app.config))
    return jsonify(alert_json(alert))


@bp.post("/piles/<pile_id>/commands")
@token_required
def send_command(user, pile_id: str):
    data = body(CommandBody)
    cmd = commands.issue(user, pile_id, data.port, data.action, alert_id=data.alert)
    return jsonify(command_json(cmd)), 202


@bp.get("/piles/<pile_id>/commands")
@token_required
def pile_commands(user, pile_id: str):
    limit, offset = page_args()
    rows = commands.list_commands(user, pile_id=pile_id, limit=limit, offset=offset)
    return jsonify([command_json(c) for c in rows])


@bp.get("/commands/<command_id>")
@token_required
def get_command(user, command_id: str):
    return jsonify(command_json(commands.get_command(user, command_id)))


@bp.get("/alleys/<slug>/contacts")
@token_required
def list_contacts(user, slug: str):
    return jsonify([contact_json(c) for c in notify.list_contacts(user, slug)])


@bp.post("/alleys/<slug>/contacts")
@token_required
def add_contact(user, slug: str):
    data = body(ContactBody)
    contact = notify.add_contact(user, slug, notify.ContactInput(**data.model_dump()))
    return jsonify(contact_json(contact)), 201


@bp.delete("/contacts/<int:contact_id>")
@token_required
def delete_contact(user, contact_id: int):
    notify.delete_contact(user, contact_id)
    return "", 204
