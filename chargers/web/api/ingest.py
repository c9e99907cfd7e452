"""Staff calls about what the piles sent: sessions, and rejected messages."""

from __future__ import annotations

from flask import jsonify, request

from ...models import ChargingSession, Rejection
from ...services.charging import sessions
from ...services.ingest import message_log
from ..access import token_required
from . import bp
from .common import iso, known_args, page_args


def session_json(s: ChargingSession) -> dict:
    return {"id": s.id, "pile": s.pile_id, "port": s.port, "session": s.session_ref,
            "started_at": iso(s.started_at), "ended_at": iso(s.ended_at),
            "card": s.card, "energy_wh": s.energy_wh, "energy_cents": s.energy_cents,
            "service_cents": s.service_cents, "amount_cents": s.amount_cents,
            "tariff": tariff_json(s), "status": s.status,
            "stop_reason": s.stop_reason, "time_source": s.time_source,
            "risk": s.risk, "risk_reasons": list(s.risk_reasons or []),
            "meter_resets": s.meter_resets or 0, "covered_cents": s.covered_cents,
            "shortfall_cents": s.shortfall_cents, "occupancy_cents": s.occupancy_cents,
            "receipt_serial": s.receipt_serial}


def tariff_json(s: ChargingSession) -> dict | None:
    """The prices a settled session was charged at (None until settled)."""
    if s.bill is None:
        return None
    b = s.bill
    return {"id": s.tariff_id, "electricity_cents_per_kwh": b.get("electricity_cents_per_kwh"),
            "service_scheme": b.get("service_scheme"),
            "service_unit_cents": b.get("service_unit_cents"),
            "step_minutes": b.get("step_minutes"), "tier": b.get("tier"),
            "tier_max_w": b.get("tier_max_w")}


def rejection_json(r: Rejection) -> dict:
    return {"id": r.id, "reason": r.reason, "topic": r.topic, "pile": r.pile_id,
            "detail": r.detail, "payload": r.payload_excerpt, "received_at": iso(r.received_at)}


@bp.get("/sessions")
@token_required
def list_sessions(user):
    known_args("pile", "alley")
    limit, offset = page_args()
    rows = sessions.list_sessions(user, request.args.get("pile") or None, limit=limit,
                                  offset=offset, alley_slug=request.args.get("alley") or None)
    return jsonify([session_json(s) for s in rows])


@bp.get("/rejections")
@token_required
def list_rejections(user):
    limit, offset = page_args()
    rows = message_log.list_rejections(user, reason=request.args.get("reason") or None, limit=limit,
                                  offset=offset)
    return jsonify([rejection_json(r) for r in rows])
