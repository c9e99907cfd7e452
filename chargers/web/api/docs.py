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
    return spec


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())
