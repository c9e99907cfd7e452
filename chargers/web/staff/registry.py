"""Staff pages for alleys and piles: list, add, edit, new secret, QR sheet.

Every page is scoped by chargers.services.scope through the services: a staff member
asking for another alley's page gets 404, exactly as the API answers."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ... import outcomes, settings
from ...services import desk, onboarding
from ...services.alerts import lifecycle as alerts
from ...services.budget import feeder
from ...services.charging import availability
from ...services.devices import alleys, piles, qrcodes
from ...services.errors import DomainError
from ...services.maintenance import overstay
from ..forms import AlleyForm, ConfirmForm, PileForm
from ..ordering import by_label
from . import bp


@bp.get("/")
def dashboard():
    """The desk: per alley, open alerts by severity, offline piles, ports out of
    service; the most urgent alley first."""
    return render_template("staff/dashboard.html", rows=desk.desk(current_user))


@bp.route("/alleys/new", methods=["GET", "POST"])
def alley_new():
    """Add an alley (admins only)."""
    if not alleys.may_create_alley(current_user):
        abort(403)
    form = AlleyForm()
    if form.validate_on_submit():
        try:
            alley = onboarding.create_alley(_alley_input(form),
                                        settings.alley_defaults(current_app.config),
                                        by=current_user)
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Alley added."), "ok")
            return redirect(url_for("staff.alley_detail", slug=alley.slug))
    return render_template("staff/alley_form.html", form=form, alley=None)


def _alley_input(form: AlleyForm) -> alleys.AlleyInput:
    return alleys.AlleyInput(
        slug=form.slug.data, name=form.name.data, street=form.street.data,
        community=form.community.data, address=form.address.data,
        timezone=form.timezone.data or None, contacts=form.contacts.data,
        tariff_cents_per_kwh=form.tariff_per_kwh.data, auto_cutoff=form.auto_cutoff.data,
        allow_unbilled=form.allow_unbilled.data,
    )


@bp.get("/alleys/<slug>")
def alley_detail(slug: str):
    """One alley: its facts and every pile with its ports' states."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    views = {v.id: v for v in availability.alley_view(alley).piles}
    rows = [(p, views[p.id]) for p in by_label(alley.piles)]
    now = datetime.now(UTC)
    return render_template("staff/alley.html", alley=alley, piles=rows, now=now,
                           overstay_minutes=overstay.minutes_by_port(alley_id=alley.id, now=now),
                           open_alerts=alerts.open_alerts_by(current_user, lambda a: a.pile_id,
                                                            alley=slug))


@bp.route("/alleys/<slug>/edit", methods=["GET", "POST"])
def alley_edit(slug: str):
    """Change an alley (its slug stays)."""
    alley = alleys.get_alley(current_user, slug)
    form = AlleyForm(obj=alley)
    del form.slug  # fixed once created: it is in printed QR codes' pages
    if not form.is_submitted():  # the field is in yuan, the alley's column in fen
        form.tariff_per_kwh.data = alley.tariff_cents_per_kwh
    if form.validate_on_submit():
        data = _alley_input_edit(form)
        try:
            onboarding.update_alley(current_user, slug, data)
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("staff.alley_detail", slug=slug))
    return render_template("staff/alley_form.html", form=form, alley=alley)


def _alley_input_edit(form: AlleyForm) -> alleys.AlleyInput:
    return alleys.AlleyInput(
        name=form.name.data, street=form.street.data or "", community=form.community.data or "",
        address=form.address.data or "", timezone=form.timezone.data or None,
        contacts=form.contacts.data or "", tariff_cents_per_kwh=form.tariff_per_kwh.data,
        auto_cutoff=form.auto_cutoff.data, allow_unbilled=form.allow_unbilled.data,
    )


@bp.route("/alleys/<slug>/piles/new", methods=["GET", "POST"])
def pile_new(slug: str):
    """Register a pile; its MQTT secret is shown once on the next page."""
    alley = alleys.get_alley(current_user, slug)
    form = PileForm()
    if form.validate_on_submit():
        try:
            pile, secret = piles.register_pile(current_user, piles.PileInput(
                id=form.id.data, alley=slug, ports=form.ports.data, label=form.label.data or None,
                location_note=form.location_note.data, enabled=form.enabled.data))
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            if form.power_limit_w.data is not None:
                try:  # the pile exists now: its secret is shown whatever becomes of this
                    feeder.set_pile_limit(current_user, pile.id, form.power_limit_w.data)
                except DomainError as exc:
                    flash(outcomes.render(exc.code, exc.params), "error")
            return _show_secret_once(pile.id, secret)
    return render_template("staff/pile_form.html", form=form, alley=alley, pile=None)


def _show_secret_once(pile_id: str, secret: str):
    """Post/redirect/get: the new secret rides in the (signed, HttpOnly) session to the
    next GET, which shows it and forgets it; reloading that page cannot issue another."""
    session["new_pile_secret"] = {"pile": pile_id, "secret": secret}
    return redirect(url_for("staff.pile_secret_confirm", pile_id=pile_id))


@bp.route("/piles/<pile_id>/edit", methods=["GET", "POST"])
def pile_edit(pile_id: str):
    """Change a pile's label, ports, place or whether it is in service."""
    pile = piles.get_pile(current_user, pile_id)
    # Not obj=pile: Pile.ports is the list of ports, which the integer field would read.
    form = PileForm(label=pile.label, ports=pile.port_count, location_note=pile.location_note,
                    enabled=pile.enabled, power_limit_w=pile.power_limit_w)
    del form.id  # the serial is the pile's identity on the broker
    if form.validate_on_submit():
        try:
            piles.update_pile(current_user, pile_id, piles.PileInput(
                ports=form.ports.data, label=form.label.data or None,
                location_note=form.location_note.data or "", enabled=form.enabled.data))
            if form.power_limit_w.data != pile.power_limit_w:
                feeder.set_pile_limit(current_user, pile_id, form.power_limit_w.data)
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("staff.alley_detail", slug=pile.alley.slug))
    return render_template("staff/pile_form.html", form=form, alley=pile.alley, pile=pile)


@bp.get("/piles/<pile_id>/secret")
def pile_secret_confirm(pile_id: str):
    """The secret just issued, shown this once (after the redirect); otherwise ask
    before issuing a new one: the old one stops working at once."""
    pile = piles.get_pile(current_user, pile_id)
    fresh = session.get("new_pile_secret")
    if fresh and fresh.get("pile") == pile.id:
        session.pop("new_pile_secret")
        return render_template("staff/pile_secret.html", pile=pile, secret=fresh["secret"])
    return render_template("staff/pile_secret_confirm.html", pile=pile, form=ConfirmForm())


@bp.post("/piles/<pile_id>/secret")
def pile_secret(pile_id: str):
    """Issue the pile a new secret and show it this once."""
    piles.get_pile(current_user, pile_id)  # 404 outside scope before anything else
    if not ConfirmForm().validate_on_submit():
        abort(400)
    pile, secret = piles.rotate_secret(current_user, pile_id)
    return _show_secret_once(pile.id, secret)


@bp.get("/alleys/<slug>/qr")
def qr_sheet(slug: str):
    """A printable sheet, one QR code per pile, each opening the pile's public page."""
    alley = alleys.get_alley(current_user, slug)
    base_url = current_app.config["PUBLIC_BASE_URL"]
    codes = [(p, qrcodes.pile_qr_svg(p.id, base_url), qrcodes.pile_url(p.id, base_url))
             for p in by_label(alley.piles)]
    host = (urlsplit(base_url).hostname or "").lower()
    local = host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.") or not host
    return render_template("staff/qr_sheet.html", alley=alley, codes=codes,
                           local_base_url=base_url if local else None)
