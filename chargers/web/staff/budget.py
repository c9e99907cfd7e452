"""Staff pages of the alley's power budget: the feeder (load now against the limit,
the day's load curve with the queue under it, the evening peak of 30 days, how many
more ports the supply takes), the queue, and every answer to a card at a pile."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional

from ... import outcomes, settings
from ...labels import (
    AUTHORIZE_REASON_LABELS,
    AUTHORIZE_RESULT_LABELS,
    QUEUE_DROP_LABELS,
    QUEUE_STATE_LABELS,
)
from ...models import utcnow
from ...services.budget import feeder
from ...services.devices import alleys
from ...services.errors import DomainError
from ..charts import bar_chart, line_chart
from . import bp


class FeederForm(FlaskForm):
    limit_w = IntegerField(_l("Feeder limit for charging (W)"),
                           validators=[Optional(), NumberRange(0, 10_000_000)])
    margin_w = IntegerField(_l("Safety margin (W)"),
                            validators=[Optional(), NumberRange(0, 10_000_000)])


def _day(alley, text: str | None, now: datetime) -> datetime:
    """The local midnight of `text` (YYYY-MM-DD), else of today, in the alley's zone."""
    tz = ZoneInfo(alley.timezone)
    try:
        d = datetime.strptime(text, "%Y-%m-%d").date() if text else now.astimezone(tz).date()
    except ValueError:
        d = now.astimezone(tz).date()
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def charts(v: feeder.FeederView) -> tuple:
    """The day's load curve against the limit, and the queue length under it (the
    highest in each 10 minutes)."""
    if not v.samples:
        return None, None
    secs = [(s.at - v.day_start).total_seconds() for s in v.samples]
    levels = []
    if v.budget.limit_w is not None:
        levels.append((float(v.budget.limit_w), _("limit %(w)s W", w=v.budget.limit_w)))
    load = line_chart(_("Charging load today"), secs,
                      [(_("Load"), [s.load_w for s in v.samples], "#1d4ed8", "W")],
                      tick_every_s=3 * 3600, levels=levels, width=640, height=200)
    slots = [0] * 144
    for t, s in zip(secs, v.samples, strict=True):
        i = int(t // 600)
        if 0 <= i < 144:
            slots[i] = max(slots[i], s.queue)
    labels = [f"{i // 6:02d}:{i % 6 * 10:02d}" for i in range(144)]
    ticks = [f"{i // 6}" for i in range(144)]
    queue = bar_chart(_("Residents waiting"), labels, slots, tick_labels=ticks, tick_every=18,
                      width=640, height=90)
    return load, queue


@bp.route("/alleys/<slug>/feeder", methods=["GET", "POST"])
def alley_feeder(slug: str):
    """The alley's feeder: its budget now, the day's curve, the queue and the answers."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    now = utcnow()
    form = FeederForm(data={"limit_w": alley.feeder_limit_w, "margin_w": alley.feeder_margin_w})
    if form.validate_on_submit():
        try:
            feeder.set_limit(current_user, slug, {"feeder_limit_w": form.limit_w.data,
                                                  "feeder_margin_w": form.margin_w.data}, now)
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("staff.alley_feeder", slug=slug))
    day = _day(alley, request.args.get("day"), now)
    v = feeder.view(alley, day, now, settings.budget(current_app.config))
    load_chart, queue_chart = charts(v)
    return render_template("staff/feeder.html", alley=alley, v=v, form=form, day=day,
                           prev_day=(day - timedelta(days=1)).strftime("%Y-%m-%d"),
                           next_day=(day + timedelta(days=1)).strftime("%Y-%m-%d"),
                           load_chart=load_chart, queue_chart=queue_chart,
                           result_labels=AUTHORIZE_RESULT_LABELS,
                           reason_labels=AUTHORIZE_REASON_LABELS,
                           queue_labels=QUEUE_STATE_LABELS, drop_labels=QUEUE_DROP_LABELS)


def feeder_chart_of(alley, at: datetime):
    """The load curve of the local day holding `at` (an over-budget alert's page)."""
    v = feeder.view(alley, _day(alley, at.astimezone(ZoneInfo(alley.timezone))
                                .strftime("%Y-%m-%d"), at), utcnow(),
                    settings.budget(current_app.config), answers=0)
    return charts(v)[0]
