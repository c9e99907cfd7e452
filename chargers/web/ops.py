"""Operations: /healthz and /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..mqtt_settings import broker_address
from ..services import health, metrics

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    report = health.check(broker_address(current_app.config))
    return jsonify(report.as_dict()), (200 if report.ok else 503)


@bp.get("/metrics")
def prometheus():
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
