"""The JSON API under /api/v1 (described in openapi.yaml beside this file)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Each module adds its routes to `bp`.
from . import alerts, billing, docs, ingest, public, registry  # noqa: E402,F401
