"""Staff pages for alerts: the live list, one alert with its history, acknowledge and
resolve, commands to piles (stop / disable / enable), and the alleys' alert contacts.

Every page works without JavaScript; static/alerts.js only refreshes the list from
/staff/alerts/feed every few seconds.
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional

from ... import outcomes, settings
from ...extensions import db
from ...models import Contact, utcnow
from ...protocol.codes import MAX_PORTS
from ...services.alerts import cutoff, notify, reports
from ...services.alerts import lifecycle as alert_svc
from ...services.alerts.lifecycle import AlertFilter
from ...services.alerts.severity import SEVERITIES
from ...services.billing import accounts
from ...services.charging import endings, sessions
from ...services.devices import alleys, commands, piles
from ...services.errors import DomainError
from ...services.safety import curves
from ..validation import DB_INT_MAX
from . import bp
from .budget import feeder_chart_of
from .wording import ACTION_LABELS

REFRESH_MS = 5000

class NoteForm(FlaskForm):
    """Acknowledge, with an optional note."""

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class ResolveForm(FlaskForm):
    """Resolve: the note is required (what was found, what was done); while the pile
    still reports the fault, an explicit override too (the note is the reason)."""

    note = TextAreaField(_l("What was found and done"), validators=[DataRequired(), Length(max=2000)])
    override = BooleanField(_l("The pile still reports this fault: resolve anyway (say why above)"))


class CommandForm(FlaskForm):
    """One command button: the action, the port (none = the whole pile), and the alert
    it answers."""

    action = HiddenField(validators=[AnyOf(commands.ACTIONS)])
    port = IntegerField(validators=[Optional(), NumberRange(1, MAX_PORTS)])
    alert_id = IntegerField(validators=[Optional(), NumberRange(1, DB_INT_MAX)])


class ContactForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=64)])
    level = SelectField(_l("Level"), coerce=int,
                        choices=[SelectChoice(1, _l("1 — first")),
                                 SelectChoice(2, _l("2 — escalation"))])
    channel = SelectField(_l("Channel"), choices=[SelectChoice("webhook", _l("Group robot webhook")),
                                                  SelectChoice("email", _l("E-mail"))])
    target = StringField(_l("Webhook URL or e-mail address"),
                         validators=[DataRequired(), Length(max=512)])
    webhook_format = SelectField(_l("Robot"), choices=[
        SelectChoice("auto", _l("Automatic (by address)")), SelectChoice("wecom", _l("WeCom")),
        SelectChoice("dingtalk", _l("DingTalk")), SelectChoice("feishu", _l("Feishu"))])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=32)])
    public = BooleanField(_l("Show name and phone to residents (looks after the piles)"))


def _filter_args() -> dict:
    """The list's filters from the query string; status defaults to open alerts."""
    status = request.args.get("status") or "open"
    if status not in ("open", "all", *alert_svc.STATUSES):
        status = "open"
    severity = request.args.get("severity") or ""
    if severity not in SEVERITIES:
        severity = ""
    return {"status": status, "severity": severity, "alley": request.args.get("alley") or ""}


def _list(args: dict):
    f = AlertFilter(status=None if args["status"] == "all" else args["status"],
                    severity=args["severity"] or None, alley=args["alley"] or None)
    return alert_svc.list_alerts(current_user, f, triage=True, limit=200)


def _filter_counts(args: dict) -> dict[str, int]:
    """The chips' numbers: what the current alley and status filter holds, by severity
    (all severities, so each chip says what choosing it would show)."""
    f = AlertFilter(status=None if args["status"] == "all" else args["status"],
                    alley=args["alley"] or None)
    out = dict.fromkeys(SEVERITIES, 0) | {"unacknowledged": 0}
    for a in alert_svc.list_alerts(current_user, f, limit=None):
        out[a.severity] = out.get(a.severity, 0) + 1
        out["unacknowledged"] += a.status == "active"
    return out


def _list_url(args: dict) -> str:
    """The list with these filters: where acknowledging from the list returns to."""
    return url_for("staff.alerts", **{k: v for k, v in args.items() if v})


@bp.get("/alerts")
def alerts():
    """Open alerts first, unacknowledged and critical on top; filters; live refresh."""
    args = _filter_args()
    return render_template(
        "staff/alerts.html", rows=_list(args), args=args, list_url=_list_url(args),
        counts=_filter_counts(args),
        alleys=alleys.list_alleys(current_user), severities=SEVERITIES, confirm=NoteForm(),
        refresh_ms=REFRESH_MS, feed_url=url_for("staff.alerts_feed", **args),
        refresh=30)  # without JavaScript, base.html reloads the page this often


@bp.get("/alerts/feed")
def alerts_feed():
    """The list as an HTML fragment inside JSON, for the page's polling script."""
    args = _filter_args()
    counts = alert_svc.count_open(current_user)
    html = render_template("staff/_alert_list.html", rows=_list(args), confirm=NoteForm(),
                           args=args, list_url=_list_url(args))
    counts_html = render_template("staff/_alert_counts.html", counts=_filter_counts(args),
                                  args=args)
    return jsonify({"html": html, "counts_html": counts_html, "counts": counts})


def _alert_page(alert_id: int, note_form=None, resolve_form=None):
    alert = alert_svc.get_alert(current_user, alert_id)
    g.tz = alert.pile.alley.timezone
    feeder_chart = None
    if alert.code == "over_budget":  # the feeder's load on the day it went over
        feeder_chart = feeder_chart_of(alert.pile.alley, alert.raised_at)
    return render_template(
        "staff/alert_feeder.html" if feeder_chart else "staff/alert.html",
        feeder_chart=feeder_chart, **_alert_context(alert, note_form, resolve_form))


def _alert_context(alert, note_form=None, resolve_form=None) -> dict:
    about = alert_svc.about_session(alert)
    about = curves.get_session(current_user, about) if about is not None else None
    return dict(
        about=about, about_stop=endings.stop_asked(about) if about is not None else None,
        about_holder=(accounts.active_holder(alert.pile.alley_id, about.card)
                      if about is not None else None),
        alert=alert, note_form=note_form or NoteForm(),
        resolve_form=resolve_form or ResolveForm(), confirm=NoteForm(),
        cmds=commands.list_commands(current_user, pile_id=alert.pile_id, limit=20),
        notes=notify.notifications_for(alert.id), reports=reports.for_alert(alert.id),
        still_reported=alert_svc.still_reported(alert),
        sessions=sessions.active_by_port(alert.pile_id), now=utcnow())


@bp.get("/alerts/<int:alert_id>")
def alert_detail(alert_id: int):
    return _alert_page(alert_id)


@bp.post("/alerts/<int:alert_id>/acknowledge")
def alert_acknowledge(alert_id: int):
    form = NoteForm()
    if not form.validate_on_submit():
        abort(400)
    alert_svc.acknowledge(current_user, alert_id, form.note.data)
    flash(_("Acknowledged."), "ok")
    back = request.form.get("back") or ""
    if back == "list":
        return redirect(url_for("staff.alerts"))
    if back.startswith(url_for("staff.alerts")) and "//" not in back:
        return redirect(back)  # the list as it was filtered (only ever a path of ours)
    return redirect(url_for("staff.alert_detail", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/resolve")
def alert_resolve(alert_id: int):
    form = ResolveForm()
    if not form.validate_on_submit():
        flash(_("Say what was found or done."), "error")
        return _alert_page(alert_id, resolve_form=form), 422
    try:
        alert_svc.resolve(current_user, alert_id, form.note.data, override=form.override.data)
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(outcomes.render(exc.code, exc.params), "error")
        if exc.code == "alert.still_reported":
            return _alert_page(alert_id, resolve_form=form), 409
    else:
        flash(_("Resolved."), "ok")
    return redirect(url_for("staff.alert_detail", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/cutoff/retry")
def cutoff_retry(alert_id: int):
    """"Try again" on a cut-off the pile has not confirmed."""
    if not NoteForm().validate_on_submit():
        abort(400)
    try:
        cutoff.retry(current_user, alert_id, utcnow(), settings.alerts(current_app.config))
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(outcomes.render(exc.code, exc.params), "error")
    else:
        flash(_("Cut-off sent again; waiting for the pile to confirm."), "ok")
    return redirect(url_for("staff.alert_detail", alert_id=alert_id))


@bp.context_processor
def _cutoff_alarms() -> dict:
    """The red box of cut-offs not confirmed (staff/_cutoff_alarm.html), read only
    where a page includes it."""
    def alarms(alley: str | None = None, pile: str | None = None):
        if not current_user.is_authenticated:
            return []
        return [a for a in cutoff.unconfirmed(current_user)
                if (alley is None or a.pile.alley.slug == alley) and (pile is None or a.pile_id == pile)]

    return {"cutoff_alarms": alarms, "cutoff_form": NoteForm}


@bp.get("/piles/<pile_id>/control")
def pile_control(pile_id: str):
    """Stop, disable or enable each port or the whole pile; recent commands' outcomes."""
    pile = piles.get_pile(current_user, pile_id)
    g.tz = pile.alley.timezone
    open_alerts = alert_svc.open_alerts_by(current_user, lambda a: a.port, pile=pile.id)
    return render_template("staff/pile_control.html", pile=pile, confirm=NoteForm(),
                           cmds=commands.list_commands(current_user, pile_id=pile.id, limit=30),
                           open_alerts=open_alerts, sessions=sessions.active_by_port(pile.id),
                           now=utcnow())


@bp.post("/piles/<pile_id>/command")
def pile_command(pile_id: str):
    form = CommandForm()
    if not form.validate_on_submit():
        flash(_("Unknown command."), "error")
        return redirect(url_for("staff.pile_control", pile_id=pile_id))
    alert_id = form.alert_id.data
    try:
        cmd = commands.issue(current_user, pile_id, form.port.data, form.action.data,
                             alert_id=alert_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        flash(outcomes.render(exc.code, exc.params), "error")
    else:
        where = _("port %(n)d", n=cmd.port) if cmd.port else _("whole pile")
        flash(_("%(action)s · %(where)s: sent to the pile.",
                action=ACTION_LABELS[cmd.action], where=where), "ok")
    if alert_id:
        return redirect(url_for("staff.alert_detail", alert_id=alert_id))
    return redirect(url_for("staff.pile_control", pile_id=pile_id))


@bp.route("/alleys/<slug>/contacts", methods=["GET", "POST"])
def alley_contacts(slug: str):
    alley = alleys.get_alley(current_user, slug)
    form = ContactForm()
    if form.validate_on_submit():
        try:
            notify.add_contact(current_user, slug, notify.ContactInput(
                name=form.name.data, channel=form.channel.data, target=form.target.data,
                level=form.level.data, webhook_format=form.webhook_format.data,
                phone=form.phone.data or "", public=form.public.data))
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Contact added."), "ok")
            return redirect(url_for("staff.alley_contacts", slug=slug))
    return render_template("staff/alert_contacts.html", alley=alley, form=form,
                           contacts=notify.list_contacts(current_user, slug), confirm=NoteForm())


@bp.post("/contacts/<int:contact_id>/test")
def contact_test(contact_id: int):
    """Send a test notification now and say how it went."""
    if not NoteForm().validate_on_submit():
        abort(400)
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    ok, why = notify.send_test(current_user, contact_id, utcnow(),
                               paging=settings.paging(current_app.config),
                               delivery=settings.delivery(current_app.config))
    if ok:
        flash(_("Test notification delivered to %(name)s.", name=contact.name), "ok")
    else:
        flash(_("Test notification to %(name)s failed: %(why)s", name=contact.name, why=why),
              "error")
    return redirect(url_for("staff.alley_contacts", slug=contact.alley.slug))


@bp.post("/contacts/<int:contact_id>/delete")
def contact_delete(contact_id: int):
    if not NoteForm().validate_on_submit():
        abort(400)
    slug = notify.delete_contact(current_user, contact_id)
    flash(_("Contact removed."), "ok")
    return redirect(url_for("staff.alley_contacts", slug=slug))
