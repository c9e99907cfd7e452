"""Residents' pages: which ports are free now. Public, phone-first; they work without
JavaScript (a <noscript> meta refresh) and static/live.js refreshes them in place."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, g, render_template
from flask_babel import get_locale

from ..services import alleys, availability, piles
from . import viewcache
from .ordering import by_label

bp = Blueprint("resident", __name__)

REFRESH_SECONDS = 30


@bp.get("/")
def index():
    """Every alley with its free count."""
    views = availability.alley_views(alleys.list_alleys())
    return render_template("resident/index.html", alleys=views, refresh=REFRESH_SECONDS,
                           now=datetime.now(UTC))


@bp.get("/a/<slug>")
def alley(slug: str):
    """One alley: each pile and port with its state and for how long. Anonymous
    requests are served from the view cached for the alley's state version (and the
    minute: the page says how long ago), with ETag / 304."""
    state = viewcache.alley_state(slug) if viewcache.cacheable() else None
    if state is None:
        return _alley_page(slug)
    now = datetime.now(UTC)
    key = ("page", state[0], str(get_locale()), state[1], now.strftime("%Y%m%d%H%M"))
    return viewcache.respond(key, lambda: _alley_page(slug, now).encode(), "text/html")


def _alley_page(slug: str, now: datetime | None = None) -> str:
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    view = availability.alley_view(alley)
    view.piles = by_label(view.piles)  # 2号桩 before 10号桩
    return render_template("resident/alley.html", alley=alley, view=view,
                           counts=view.counts(), refresh=REFRESH_SECONDS,
                           now=now or datetime.now(UTC))


@bp.get("/p/<pile_id>")
def pile(pile_id: str):
    """One pile (the page its QR code opens)."""
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    view = availability.pile_view(pile)
    return render_template("resident/pile.html", pile=pile, alley=pile.alley, view=view,
                           refresh=REFRESH_SECONDS, now=datetime.now(UTC))
