"""The JSON API under /api/v1.

One module per area defines its routes on `bp` and documents them in
`openapi_<module>.yaml` beside it (docs.py merges those into openapi.yaml; a test
checks that every route is documented by its module). A new API module: the .py,
its import below, and its YAML."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Each module adds its routes to `bp`.
from . import alerts, billing, docs, ingest, public, registry, statements  # noqa: E402,F401
