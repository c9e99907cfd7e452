"""Staff calls for the registry: alleys and piles (Bearer token)."""

from __future__ import annotations

from flask import current_app, jsonify, request

from ... import settings
from ...models import Alley, Pile, utcnow
from ...services import onboarding
from ...services.budget import feeder
from ...services.devices import alleys, piles
from ...services.devices import config as pile_config
from ..access import token_required
from . import bp
from .common import body, iso, page_args
from .schemas import AlleyCreate, AlleyUpdate, PileCreate, PileUpdate

# Not the alley's registry fields: set by their own services.
BUDGET_FIELDS = {"device_settings", "feeder_limit_w", "feeder_margin_w"}


def _budget_fields(data) -> dict:
    return {k: getattr(data, k) for k in ("feeder_limit_w", "feeder_margin_w")
            if k in data.model_fields_set}


def alley_json(a: Alley) -> dict:
    return {"slug": a.slug, "name": a.name, "street": a.street, "community": a.community,
            "address": a.address, "timezone": a.timezone, "contacts": a.contacts,
            "tariff_cents_per_kwh": a.tariff_cents_per_kwh, "auto_cutoff": a.auto_cutoff,
            "allow_unbilled": a.allow_unbilled, "device_settings": a.device_settings or {},
            "feeder_limit_w": a.feeder_limit_w, "feeder_margin_w": a.feeder_margin_w,
            "piles": len(a.piles), "created_at": iso(a.created_at)}


def pile_json(p: Pile) -> dict:
    return {"id": p.id, "alley": p.alley.slug, "label": p.label, "ports": p.port_count,
            "location_note": p.location_note, "model": p.model, "firmware": p.firmware,
            "max_power_w": p.max_power_w, "enabled": p.enabled, "online": p.online,
            "last_seen_at": iso(p.last_seen_at), "created_at": iso(p.created_at),
            "meter_resets": p.meter_resets or 0,
            "port_states": [{"port": x.number, "status": x.status, "enabled": x.enabled,
                             "since": iso(x.status_since)} for x in p.ports],
            "features": list(p.features or []), "config": pile_config.view(p),
            "power_limit_w": p.power_limit_w}


@bp.post("/alleys")
@token_required
def create_alley(user):
    data = body(AlleyCreate)
    alley = onboarding.create_alley(alleys.AlleyInput(**data.model_dump(exclude=BUDGET_FIELDS)),
                                    settings.alley_defaults(current_app.config), by=user)
    if data.model_fields_set & {"feeder_limit_w", "feeder_margin_w"}:
        alley = feeder.set_limit(user, alley.slug, _budget_fields(data), utcnow())
    if data.device_settings is not None:
        alley = pile_config.set_alley_settings(user, alley.slug, data.device_settings,
                                               settings.limits(current_app.config), utcnow())
    return jsonify(alley_json(alley)), 201


@bp.patch("/alleys/<slug>")
@token_required
def update_alley(user, slug: str):
    data = body(AlleyUpdate)
    if data.device_settings is not None:  # checked first: a bad key changes nothing
        pile_config.clean(data.device_settings)
    alley = onboarding.update_alley(user, slug, alleys.AlleyInput(
        **data.model_dump(exclude=BUDGET_FIELDS)))
    if data.model_fields_set & {"feeder_limit_w", "feeder_margin_w"}:
        alley = feeder.set_limit(user, slug, _budget_fields(data), utcnow())
    if data.device_settings is not None:
        alley = pile_config.set_alley_settings(user, slug, data.device_settings,
                                               settings.limits(current_app.config), utcnow())
    return jsonify(alley_json(alley))


@bp.get("/piles")
@token_required
def list_piles(user):
    limit, offset = page_args()
    rows = piles.list_piles(user, request.args.get("alley"), newest_first=True,
                            limit=limit, offset=offset)
    return jsonify([pile_json(p) for p in rows])


@bp.post("/piles")
@token_required
def create_pile(user):
    data = body(PileCreate)
    pile, secret = piles.register_pile(user, piles.PileInput(
        **data.model_dump(exclude={"config", "power_limit_w"})))
    if "power_limit_w" in data.model_fields_set:
        pile = feeder.set_pile_limit(user, pile.id, data.power_limit_w)
    if data.config is not None:
        pile = pile_config.set_pile_overrides(user, pile.id, data.config,
                                              settings.limits(current_app.config), utcnow())
    return jsonify({**pile_json(pile), "secret": secret}), 201


@bp.get("/piles/<pile_id>")
@token_required
def get_pile(user, pile_id: str):
    return jsonify(pile_json(piles.get_pile(user, pile_id)))


@bp.patch("/piles/<pile_id>")
@token_required
def update_pile(user, pile_id: str):
    data = body(PileUpdate)
    if data.config is not None:
        pile_config.clean(data.config)
    pile = piles.update_pile(user, pile_id, piles.PileInput(
        **data.model_dump(exclude={"config", "power_limit_w"})))
    if "power_limit_w" in data.model_fields_set:
        pile = feeder.set_pile_limit(user, pile_id, data.power_limit_w)
    if data.config is not None:
        pile = pile_config.set_pile_overrides(user, pile_id, data.config,
                                              settings.limits(current_app.config), utcnow())
    return jsonify(pile_json(pile))


@bp.post("/piles/<pile_id>/disable")
@token_required
def disable_pile(user, pile_id: str):
    return jsonify(pile_json(piles.set_pile_enabled(user, pile_id, False)))


@bp.post("/piles/<pile_id>/enable")
@token_required
def enable_pile(user, pile_id: str):
    return jsonify(pile_json(piles.set_pile_enabled(user, pile_id, True)))


@bp.post("/piles/<pile_id>/secret")
@token_required
def rotate_secret(user, pile_id: str):
    pile, secret = piles.rotate_secret(user, pile_id)
    return jsonify({**pile_json(pile), "secret": secret})
