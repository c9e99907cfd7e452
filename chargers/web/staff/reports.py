"""Residents' problem reports as staff see them: the photo behind a report (login and
the pile's alley in the user's scope)."""

from __future__ import annotations

from flask import send_file
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from ...extensions import db
from ...models import ProblemReport
from ...services import scope
from ...services.alerts import reports
from ...services.errors import NotFound
from ..resident import report_settings
from . import bp


@bp.get("/reports/photo/<name>")
def report_photo(name: str):
    """A report's photo, for staff of its alley only."""
    report = db.session.scalar(select(ProblemReport).where(ProblemReport.photo == name))
    if report is None:
        raise NotFound("report.photo_not_found")
    scope.check_pile(current_user, report.pile)
    path = reports.photo_path(report_settings(), name)
    return send_file(path, mimetype="image/jpeg", max_age=0)


REPORT_KIND_LABELS = {"no_power": _l("No power"), "damaged": _l("Damaged socket"),
                      "burning": _l("Burning smell or smoke"), "other": _l("Something else")}


@bp.context_processor
def _report_words() -> dict:
    return {"report_kind_label": lambda kind: REPORT_KIND_LABELS.get(kind, kind)}
