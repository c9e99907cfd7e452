"""Public calls, no login: alleys and their ports' availability."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, jsonify

from ... import settings
from ...services.budget import feeder
from ...services.charging import availability, time_left
from ...services.devices import alleys
from .. import viewcache
from ..ordering import by_label
from . import bp
from .common import iso


def port_json(p: availability.PortView) -> dict:
    out = {"port": p.port, "status": p.status, "state": p.state, "free": p.free,
           "since": iso(p.since)}
    e = p.estimate
    if e is not None:
        out["time_left"] = {"minutes": e.minutes, "basis": e.basis, "power_w": e.power_w,
                            "energy_wh": e.energy_wh}
    return out


def pile_json(p: availability.PileView) -> dict:
    return {"id": p.id, "label": p.label, "location_note": p.location_note,
            "online": p.online, "enabled": p.enabled, "free": p.free,
            "unsafe": p.unsafe, "fire": [{"port": port, "code": code} for port, code in p.fire],
            "ports": [port_json(x) for x in p.ports]}


@bp.get("/alleys")
def list_alleys():
    views = availability.alley_views(alleys.list_alleys())
    return jsonify([
        {"slug": v.slug, "name": v.name, "piles": len(v.piles), "ports": v.ports, "free": v.free}
        for v in views
    ])


@bp.get("/alleys/<slug>")
def get_alley(slug: str):
    """The alley's availability; built once per state version of the alley and minute
    (ETag)."""
    state = viewcache.alley_state(slug)
    if state is None or not viewcache.cacheable():
        return jsonify(_alley_json(slug))
    # The minute is part of the key: the time-left estimates move with the clock.
    minute = datetime.now(UTC).strftime("%Y%m%d%H%M")
    return viewcache.respond(("api", state[0], state[1], minute),
                             lambda: current_app.json.dumps(_alley_json(slug)).encode(),
                             "application/json")


def _alley_json(slug: str) -> dict:
    alley = alleys.get_alley(None, slug)
    view = availability.alley_view(alley)
    view.piles = by_label(view.piles)  # as on the pages: 2号桩 before 10号桩
    next_free = time_left.fill(view.piles, alley.id, datetime.now(UTC))
    return {"slug": view.slug, "name": view.name, "timezone": alley.timezone,
            "free": view.free, "ports": view.ports, "counts": view.counts(),
            "next_free_minutes": next_free,
            "load_w": round(feeder.load_w(alley.id, datetime.now(UTC),
                                          settings.budget(current_app.config))),
            "queue": feeder.queue_length(alley.id),
            "piles": [pile_json(p) for p in view.piles]}
