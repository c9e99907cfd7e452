"""Small pieces every API module uses: paging, body parsing, time format."""

from __future__ import annotations

from datetime import datetime

from flask import request
from pydantic import BaseModel

from ...services.errors import Invalid

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def page_args() -> tuple[int, int]:
    """`limit` (default 100, at most 1000) and `offset` from the query string."""
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise Invalid("api.page_integers") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise Invalid("api.page_range", max=MAX_LIMIT)
    return limit, offset


def body(model: type[BaseModel]) -> BaseModel:
    """The JSON body validated by `model` (400 when it is not a JSON object)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        from werkzeug.exceptions import BadRequest

        raise BadRequest("the body must be a JSON object")
    return model.model_validate(data)


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC, or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
