"""Who is asking: a Bearer token (API) or a login session (web pages)."""

from __future__ import annotations

from functools import wraps

from flask import request

from ..models import User
from ..services import users
from ..services.errors import Unauthorized


def api_user() -> User:
    """The staff member behind the request's Bearer token, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.token_missing")
    user = users.user_for_token(token.strip())
    if user is None:
        raise Unauthorized("auth.token_invalid")
    return user


def token_required(view):
    """API view for staff: passes the user as the first argument."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        return view(api_user(), *args, **kwargs)

    return wrapped
