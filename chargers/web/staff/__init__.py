"""Staff pages (login session): the registry, alerts, the ingest, and more as the
product grows."""

from flask import Blueprint
from flask_login import current_user, login_required

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.before_request
@login_required
def _require_login():
    """Every staff page needs a logged-in staff member."""


@bp.context_processor
def _nav() -> dict:
    """The header's open-alert badge, counted only when a page's header shows it
    (a callable: fragments such as the alerts feed never pay for the query)."""
    from ...services.alerts.lifecycle import count_open
    from ...services.jobruns import failed_now

    return {"nav_alert_counts": lambda: count_open(current_user),
            "failed_jobs": failed_now}


from . import (  # noqa: E402,F401
    accounts,
    alerts,
    billing,
    budget,
    ingest,
    maintenance,
    payments,
    readings,
    registry,
    reports,
    safety,
    statements,
    wording,
)
