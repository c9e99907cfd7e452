"""Helpers for the web tests: CSRF tokens from forms, logging in through the form,
and putting piles and ports into a chosen state through the models."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from chargers.extensions import db
from chargers.models import Pile

from .conftest import PASSWORD

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in the page."""
    m = _CSRF.search(html)
    assert m, "no csrf_token in the page"
    return m.group(1)


def login(client, name: str, password: str = PASSWORD):
    """Log in through the form (with its CSRF token); returns the response."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def post_form(client, url: str, data: dict, form_url: str | None = None):
    """POST a form with the CSRF token taken from the page that shows it."""
    token = csrf_from(client.get(form_url or url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def set_ports(pile_id: str, statuses: list[str], *, online: bool = True,
              minutes_ago: int = 30) -> Pile:
    """Put a pile online (or not) and its ports in these statuses, `minutes_ago` old.
    Call it inside `with app.app_context():`."""
    pile = db.session.get(Pile, pile_id)
    since = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    pile.online = online
    pile.online_since = since
    for port, status in zip(pile.ports, statuses, strict=True):
        port.status = status
        port.status_since = since
    db.session.commit()
    return pile
