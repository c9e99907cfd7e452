"""Residents' pages: which ports are free now. Public, phone-first; they work without
JavaScript (a <noscript> meta refresh) and static/live.js refreshes them in place."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, g, render_template

from ..services import alleys, availability, piles, time_left
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
    """One alley: each pile and port with its state and for how long."""
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    view = availability.alley_view(alley)
    view.piles = by_label(view.piles)  # 2号桩 before 10号桩
    now = datetime.now(UTC)
    next_free = time_left.fill(view.piles, alley.id, now)
    return render_template("resident/alley.html", alley=alley, view=view, next_free=next_free,
                           counts=view.counts(), refresh=REFRESH_SECONDS, now=now)


@bp.get("/p/<pile_id>")
def pile(pile_id: str):
    """One pile (the page its QR code opens)."""
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    view = availability.pile_view(pile)
    now = datetime.now(UTC)
    time_left.fill([view], pile.alley_id, now)
    return render_template("resident/pile.html", pile=pile, alley=pile.alley, view=view,
                           refresh=REFRESH_SECONDS, now=now)
