"""Residents' pages: which ports are free now. Public, phone-first, no JavaScript."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ..services import alleys, availability, piles

bp = Blueprint("resident", __name__)

REFRESH_SECONDS = 30


@bp.get("/")
def index():
    views = availability.alley_views(alleys.list_alleys())
    return render_template("resident/index.html", alleys=views, refresh=REFRESH_SECONDS)


@bp.get("/a/<slug>")
def alley(slug: str):
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    view = availability.alley_view(alley)
    return render_template("resident/alley.html", alley=alley, view=view,
                           counts=view.counts(), refresh=REFRESH_SECONDS)


@bp.get("/p/<pile_id>")
def pile(pile_id: str):
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    view = availability.pile_view(pile)
    return render_template("resident/pile.html", pile=pile, alley=pile.alley, view=view,
                           refresh=REFRESH_SECONDS)
