"""Staff pages (login session): the registry, and more as the product grows."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.before_request
@login_required
def _require_login():
    """Every staff page needs a logged-in staff member."""


from . import alerts, ingest, registry  # noqa: E402,F401
