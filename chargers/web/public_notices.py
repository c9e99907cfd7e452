"""The alley's public accounts (公示): its published months, each with totals, the grid
bill and reconciliation, charts by day drawn on the server, and a printable A4 notice.
Nothing personal: only alley totals."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request, url_for

from .. import settings
from ..services.billing import monthly_close, reconciliation
from ..services.devices import alleys
from .charts import kwh1, month_charts

bp = Blueprint("notices", __name__)


@bp.get("/a/<slug>/accounts")
def months(slug: str):
    """The alley's published months, newest first."""
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    rule = settings.close(current_app.config)
    rows = [(mc, reconciliation.reconcile(mc, rule))
            for mc in monthly_close.published(alley.id)]
    return render_template("resident/accounts_months.html", alley=alley, rows=rows,
                           kwh1=kwh1)


def _month(slug: str, month: str):
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    mc = monthly_close.published_month(alley.id, month)
    rec = reconciliation.reconcile(mc, settings.close(current_app.config))
    return alley, mc, rec


@bp.get("/a/<slug>/accounts/<month>")
def month(slug: str, month: str):
    """One published month: totals, grid bill and loss, charts by day."""
    alley, mc, rec = _month(slug, month)
    return render_template("resident/accounts_month.html", alley=alley, mc=mc, rec=rec,
                           charts=month_charts(mc.daily), kwh1=kwh1,
                           threshold=settings.close(current_app.config).loss_pct)


@bp.get("/a/<slug>/accounts/<month>/notice")
def notice(slug: str, month: str):
    """The A4 notice for the notice board (print it from the browser)."""
    alley, mc, rec = _month(slug, month)
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    online = f"{base.rstrip('/')}{url_for('notices.month', slug=slug, month=month)}"
    return render_template("resident/accounts_notice.html", alley=alley, mc=mc, rec=rec,
                           online=online,
                           charts=month_charts(mc.daily, wide=True), kwh1=kwh1,
                           threshold=settings.close(current_app.config).loss_pct)
