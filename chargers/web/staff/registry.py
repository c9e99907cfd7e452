"""Staff pages for alleys and piles: list, add, edit, new secret, QR sheet."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...services import alleys, availability, piles
from ...services.errors import DomainError
from ..forms import AlleyForm, ConfirmForm, PileForm
from . import bp


@bp.get("/")
def dashboard():
    rows = alleys.list_alleys(current_user)
    return render_template("staff/dashboard.html", alleys=availability.alley_views(rows),
                           records=rows)


@bp.route("/alleys/new", methods=["GET", "POST"])
def alley_new():
    if not current_user.is_admin:
        abort(403)
    form = AlleyForm()
    if form.validate_on_submit():
        try:
            alley = alleys.create_alley(_alley_input(form))
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("Alley added."), "ok")
            return redirect(url_for("staff.alley_detail", slug=alley.slug))
    return render_template("staff/alley_form.html", form=form, alley=None)


def _alley_input(form: AlleyForm) -> alleys.AlleyInput:
    return alleys.AlleyInput(
        slug=form.slug.data, name=form.name.data, street=form.street.data,
        community=form.community.data, address=form.address.data,
        timezone=form.timezone.data or None, contacts=form.contacts.data,
        tariff_cents_per_kwh=form.tariff_cents_per_kwh.data, auto_cutoff=form.auto_cutoff.data,
    )


@bp.get("/alleys/<slug>")
def alley_detail(slug: str):
    alley = alleys.get_alley(current_user, slug)
    return render_template("staff/alley.html", alley=alley,
                           view=availability.alley_view(alley), confirm=ConfirmForm())


@bp.route("/alleys/<slug>/edit", methods=["GET", "POST"])
def alley_edit(slug: str):
    alley = alleys.get_alley(current_user, slug)
    form = AlleyForm(obj=alley)
    if form.validate_on_submit():
        data = _alley_input(form)
        data.slug = None
        try:
            alleys.update_alley(current_user, slug, data)
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("staff.alley_detail", slug=slug))
    return render_template("staff/alley_form.html", form=form, alley=alley)


@bp.route("/alleys/<slug>/piles/new", methods=["GET", "POST"])
def pile_new(slug: str):
    alley = alleys.get_alley(current_user, slug)
    form = PileForm()
    if form.validate_on_submit():
        try:
            pile, secret = piles.register_pile(current_user, piles.PileInput(
                id=form.id.data, alley=slug, ports=form.ports.data, label=form.label.data or None,
                location_note=form.location_note.data, enabled=form.enabled.data))
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            return render_template("staff/pile_secret.html", pile=pile, secret=secret)
    return render_template("staff/pile_form.html", form=form, alley=alley, pile=None)


@bp.route("/piles/<pile_id>/edit", methods=["GET", "POST"])
def pile_edit(pile_id: str):
    pile = piles.get_pile(current_user, pile_id)
    form = PileForm(obj=pile, ports=pile.port_count)
    if form.validate_on_submit():
        try:
            piles.update_pile(current_user, pile_id, piles.PileInput(
                ports=form.ports.data, label=form.label.data or None,
                location_note=form.location_note.data, enabled=form.enabled.data))
        except DomainError as exc:
            flash(exc.message, "error")
        else:
            flash(_("Saved."), "ok")
            return redirect(url_for("staff.alley_detail", slug=pile.alley.slug))
    return render_template("staff/pile_form.html", form=form, alley=pile.alley, pile=pile)


@bp.post("/piles/<pile_id>/secret")
def pile_secret(pile_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    pile, secret = piles.rotate_secret(current_user, pile_id)
    return render_template("staff/pile_secret.html", pile=pile, secret=secret)


@bp.get("/alleys/<slug>/qr")
def qr_sheet(slug: str):
    from ...services import qrcodes

    alley = alleys.get_alley(current_user, slug)
    codes = [(p, qrcodes.pile_qr_svg(p.id)) for p in alley.piles]
    return render_template("staff/qr_sheet.html", alley=alley, codes=codes)
