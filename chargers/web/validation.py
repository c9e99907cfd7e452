"""The one validation layer at the web's door, for values no view should ever see.

Hostile values that a database refuses instead of simply not finding (issue 13):
- a NUL character in the path, the query string or a form (PostgreSQL refuses NUL in
  text): the path → 404 (no such page), a query or form value → 400;
- an integer in the path beyond the columns' 32-bit range: the `int` converter stops at
  DB_INT_MAX, so `/alerts/2147483648` matches no route → 404;
- JSON bodies (read through `json_body`, used by every API view): not JSON, nested
  deeper than MAX_JSON_DEPTH, or holding a NUL / lone surrogate in any string → 400;
  integer body fields that name rows carry DB_INT_MAX in their pydantic models.
Under /api/ every answer is the contract's JSON error (chargers.web.errors).
"""

from __future__ import annotations

import json

from flask import Flask, abort, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

DB_INT_MAX = 2**31 - 1  # INTEGER columns (ids, ports, counts) on PostgreSQL
MAX_JSON_DEPTH = 32


class DbIntConverter(IntegerConverter):
    """`<int:…>` that matches only values an INTEGER column can hold."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


def unstorable(text: str) -> str | None:
    """Why `text` cannot go to the database (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogate"
    return None


def accepts_upload(config_key: str):
    """Mark a view that takes photos: its body may be as large as the config value
    `config_key` (plus room for the form) instead of MAX_CONTENT_LENGTH."""

    def mark(view):
        view.upload_limit_key = config_key
        return view

    return mark


UPLOAD_FORM_ROOM = 1024 * 1024  # the other fields of a form that carries photos


def _check_request() -> None:
    """before_request: refuse NUL (or lone surrogates) in the path, query and form."""
    if unstorable(request.path):
        abort(404)
    key = getattr(current_app.view_functions.get(request.endpoint), "upload_limit_key", None)
    if key:
        request.max_content_length = current_app.config[key] + UPLOAD_FORM_ROOM
    for source, values in (("query", request.args), ("form", _form())):
        for key, value in values.items(multi=True):
            why = unstorable(key) or unstorable(value)
            if why:
                raise BadRequest(f"{source} parameter {key[:40]!r}: {why} not allowed")


def _form() -> MultiDict:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form
    return MultiDict()


def _walk(data) -> str | None:
    """Why a parsed JSON value is refused (depth, NUL, lone surrogate), or None;
    iterative, so depth itself cannot exhaust the stack."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH}"
        if isinstance(value, str):
            why = unstorable(value)
            if why:
                return f"{why} in a string"
        elif isinstance(value, dict):
            for k, v in value.items():
                why = unstorable(k)
                if why:
                    return f"{why} in a key"
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def json_body():
    """The request's JSON body, checked at the door: 400 when it is not JSON (or not
    sent as application/json), nested too deep, or carries unstorable text."""
    if not request.is_json:
        raise BadRequest("the body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=True)  # 413 beyond MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH}") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    why = _walk(data)
    if why:
        raise BadRequest(f"JSON body refused: {why}")
    return data


def init_app(app: Flask) -> None:
    """Install the converter (before any route is registered) and the request check."""
    app.url_map.converters["int"] = DbIntConverter
    app.before_request_funcs.setdefault(None, []).insert(0, _check_request)
