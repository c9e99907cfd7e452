"""Residents' pages: which ports are free now. Public, phone-first; they work without
JavaScript (a <noscript> meta refresh) and static/live.js refreshes them in place."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from .. import settings
from ..extensions import limiter
from ..outcomes import render
from ..services.alerts import notify, reports
from ..services.budget import queue as budget_queue
from ..services.charging import availability, time_left
from ..services.devices import alleys, piles
from ..services.errors import Invalid
from ..services.maintenance import overstay
from . import viewcache
from .forms import ReportForm
from .ordering import by_label
from .validation import accepts_upload

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
    now = now or datetime.now(UTC)
    next_free = time_left.fill(view.piles, alley.id, now)
    return render_template("resident/alley.html", alley=alley, view=view, next_free=next_free,
                           counts=view.counts(), refresh=REFRESH_SECONDS, now=now,
                           overstay_minutes=overstay.minutes_by_port([p.id for p in view.piles],
                                                                     now=now),
                           service_contacts=notify.public_contacts(alley.id))


@bp.get("/p/<pile_id>")
def pile(pile_id: str):
    """One pile (the page its QR code opens)."""
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    view = availability.pile_view(pile)
    now = datetime.now(UTC)
    time_left.fill([view], pile.alley_id, now)
    queue_at = {}
    if budget_queue.positions([pile.id]):  # someone waits here: when may they start?
        everyone = availability.alley_view(pile.alley).piles
        time_left.fill(everyone, pile.alley_id, now)
        queue_at = budget_queue.places(pile.id, [p.estimate.minutes for v in everyone
                                                 for p in v.ports if p.estimate])
    return render_template("resident/pile.html", pile=pile, alley=pile.alley, view=view,
                           queue_at=queue_at,
                           refresh=REFRESH_SECONDS, now=now,
                           overstay_minutes=overstay.minutes_by_port([pile.id], now=now),
                           service_contacts=notify.public_contacts(pile.alley_id))


def report_settings() -> settings.ReportSettings:
    """The reports' settings from config (services never read config themselves)."""
    return settings.reports(current_app.config)


def _is_fire_report() -> bool:
    """A burning smell or smoke (报修 report_burning) is never refused by the limit."""
    return request.form.get("kind") == "burning"


def _fire_report_over_limit() -> bool:
    """Count a fire report against its address's report limit (its own counter) and
    say whether it went past: it is kept anyway, marked for staff."""
    from limits import parse

    item = parse(current_app.config["REPORT_RATE_LIMIT"])
    return not limiter.limiter.hit(item, current_app.config.get("RATELIMIT_KEY_PREFIX", ""),
                                   "report-fire", request.remote_addr or "")


@bp.route("/p/<pile_id>/report", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REPORT_RATE_LIMIT"], methods=["POST"],
               exempt_when=_is_fire_report,
               error_message=lambda: _("Many reports have come from this connection already: "
                                       "please try again later, or call the number on the pile."))
@accepts_upload("REPORT_PHOTO_MAX_BYTES")
def report(pile_id: str):
    """Report a problem with this pile (报修): reaches staff as an alert."""
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    form = ReportForm()
    form.port.choices = [SelectChoice("", _("Choose a port"))] + [
        SelectChoice(str(n), _("Port %(n)d", n=n)) for n in range(1, pile.port_count + 1)
    ] + [SelectChoice("pile", _("The whole pile / not sure"))]
    if request.method == "GET" and request.args.get("port", "").isdigit():
        form.port.data = request.args["port"]
    if form.validate_on_submit():
        upload = form.photo.data
        photo = None
        if upload and getattr(upload, "filename", ""):
            photo = upload.stream.read(current_app.config["REPORT_PHOTO_MAX_BYTES"] + 1)
        try:
            reports.submit(reports.ReportInput(
                pile_id=pile.id, port=None if form.port.data == "pile" else int(form.port.data),
                kind=form.kind.data, phone=form.phone.data or "",
                details=form.details.data or "", photo=photo,
                remote_addr=request.remote_addr,
                over_limit=form.kind.data == "burning" and _fire_report_over_limit()),
                report_settings(), datetime.now(UTC),
                rules=settings.alerts(current_app.config))
        except Invalid as exc:
            form.photo.errors = [*form.photo.errors, render(exc.code, exc.params)] \
                if exc.code.startswith("report.photo") else form.photo.errors
            if not exc.code.startswith("report.photo"):
                flash(render(exc.code, exc.params), "error")
        else:
            return redirect(url_for("resident.report_sent", pile_id=pile.id))
    return render_template("resident/report.html", pile=pile, alley=pile.alley, form=form,
                           kinds=reports.KINDS), (400 if form.errors else 200)


@bp.get("/p/<pile_id>/report/sent")
def report_sent(pile_id: str):
    """After a report (post/redirect/get): the resident sees it was sent."""
    pile = piles.get_pile(None, pile_id)
    g.tz = pile.alley.timezone
    return render_template("resident/report_sent.html", pile=pile, alley=pile.alley,
                           service_contacts=notify.public_contacts(pile.alley_id))
