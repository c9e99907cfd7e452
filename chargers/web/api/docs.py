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
    """The parsed spec (read once per process)."""
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())
