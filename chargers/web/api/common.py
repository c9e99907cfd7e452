"""Small pieces every API module uses: paging, body parsing, time format."""

from __future__ import annotations

from datetime import datetime

from flask import request
from pydantic import BaseModel
from werkzeug.exceptions import BadRequest

from ...services.errors import Invalid
from ..validation import DB_INT_MAX, json_body

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def known_args(*names: str) -> None:
    """Refuse (400, naming it) a query parameter this call does not take: a typo such
    as `?aley=x` must not silently answer everything."""
    from ...services.errors import BadParameter

    allowed = (*names, "limit", "offset", "lang")
    for name in request.args:
        if name not in allowed:
            raise BadParameter("api.unknown_parameter", name=name,
                             allowed=", ".join(allowed[:-1]))


def page_args() -> tuple[int, int]:
    """`limit` (default 100, at most 1000) and `offset` (0 to DB_INT_MAX) from the
    query string."""
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise Invalid("api.page_integers") from None
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= DB_INT_MAX:
        raise Invalid("api.page_range", max=MAX_LIMIT, max_offset=DB_INT_MAX)
    return limit, offset


def body(model: type[BaseModel]) -> BaseModel:
    """The JSON body (checked at the door by guard.json_body) validated by `model`
    (400 when it is not a JSON object)."""
    data = json_body()
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return model.model_validate(data)


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC, or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
