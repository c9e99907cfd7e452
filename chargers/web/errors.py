"""Errors: JSON under /api (the contract's shape), HTML pages elsewhere; never a
stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from .. import outcomes
from ..extensions import db
from ..services.errors import DomainError

log = logging.getLogger(__name__)


def json_error(status: int, code: str, message: str):
    """The contract's error body with its status."""
    return jsonify({"error": {"code": code, "message": message}}), status


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _rollback() -> None:
    """End the failed transaction before rendering: a page that reads the database
    (the menu, the user) would otherwise meet PostgreSQL's InFailedSqlTransaction."""
    try:
        db.session.rollback()
    except Exception:  # the connection itself may be gone; the page must still render
        log.warning("rollback failed before an error page", exc_info=True)


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        _rollback()
        if _wants_json():
            return json_error(exc.status, exc.family, exc.message)
        return render_template("error.html", status=exc.status,
                               message=outcomes.render(exc.code, exc.params)), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        # A form without a valid token: stale page, or posted from another site.
        if _wants_json():
            return json_error(400, "csrf", exc.description)
        message = _("The form has expired or came from another site. Go back, reload the page "
                    "and try again.")
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return json_error(422, "invalid", _validation_message(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        _rollback()
        code = (exc.name or "error").lower().replace(" ", "_")
        # The exception's own headers (405: Allow; 429: Retry-After), not its HTML type.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        if exc.response is not None:  # e.g. Flask-Limiter's 429 carries its headers here
            headers += [(k, v) for k, v in exc.response.headers.items()
                        if k.lower() in ("retry-after", "allow")]
        if _wants_json():
            body, status = json_error(exc.code or 500, code, exc.description or exc.name)
            return body, status, headers
        # Werkzeug's stock English paragraph adds nothing to the heading, which the
        # page says in its own language; a rate limit that has its own words (e.g. the
        # residents' reports) says them.
        limit = getattr(exc, "limit", None)
        message = exc.description if getattr(limit, "error_message", None) else None
        return render_template("error.html", status=exc.code, message=message,
                               wait_minutes=_wait_minutes(limit, headers)), exc.code, headers

    def _wait_minutes(limit, headers) -> int | None:
        """How long a rate-limited person may have to wait, in whole minutes: the
        Retry-After header, else the window of the limit that was hit (per minute,
        per hour…), so the page never says "a minute" for an hourly limit."""
        import math

        for k, v in headers:
            if k.lower() == "retry-after" and str(v).isdigit():
                return max(1, math.ceil(int(v) / 60))
        try:
            return max(1, math.ceil(limit.limit.get_expiry() / 60))
        except (AttributeError, TypeError, ValueError):
            return None

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return json_error(500, "internal", "internal error")
        return render_template("error.html", status=500), 500
