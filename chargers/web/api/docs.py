"""The OpenAPI document of this API, served from openapi.yaml."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from flask import jsonify

from . import bp

SPEC = Path(__file__).with_name("openapi.yaml")


@lru_cache(maxsize=1)
def load_spec() -> dict:
    """The parsed spec (read once per process), with the tags, schemas and paths of
    every `openapi_*.yaml` fragment beside it merged in (one per area)."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for part in sorted(SPEC.parent.glob("openapi_*.yaml")):
        frag = yaml.safe_load(part.read_text(encoding="utf-8")) or {}
        spec.setdefault("tags", []).extend(frag.get("tags", []))
        spec.setdefault("components", {}).setdefault("schemas", {}).update(
            frag.get("components", {}).get("schemas", {}))
        paths = spec.setdefault("paths", {})
        for path, item in frag.get("paths", {}).items():
            paths.setdefault(path, {}).update(item)
    _add_door_answers(spec)
    return spec


METHODS = ("get", "put", "post", "patch", "delete")


def _add_door_answers(spec: dict) -> None:
    """What the web's door (chargers.web.guard, MAX_CONTENT_LENGTH) answers before any
    view runs, stated once here for every operation rather than in each path:
    400 for a NUL (or lone surrogate) in a query value, or a body that is not JSON,
    nested too deep or carries one in a string; 413 for a body beyond the size limit;
    integer path parameters stop at the INTEGER columns' range (beyond it: 404)."""
    from ..guard import DB_INT_MAX

    responses = spec.setdefault("components", {}).setdefault("responses", {})
    responses.setdefault("PayloadTooLarge", {
        "description": "The body is larger than the server's limit (MAX_CONTENT_LENGTH).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    for item in spec.get("paths", {}).values():
        for param in item.get("parameters", []):
            _bound_int(param, DB_INT_MAX)
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            for param in op.get("parameters", []):
                _bound_int(param, DB_INT_MAX)
            answers = op.setdefault("responses", {})
            answers.setdefault("400", {"$ref": "#/components/responses/BadRequest"})
            if "requestBody" in op:
                answers.setdefault("413", {"$ref": "#/components/responses/PayloadTooLarge"})


def _bound_int(param: dict, top: int) -> None:
    """An integer path parameter names a row: 0 to the column's maximum."""
    schema = param.get("schema") or {}
    if param.get("in") == "path" and schema.get("type") == "integer":
        schema.setdefault("minimum", 0)
        schema.setdefault("maximum", top)


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())
