"""Staff accounts in the web (admins only): create, assign alleys, reset passwords,
disable, revoke API tokens. The command line stays for the first admin."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from ...models.accounts import ROLES
from ...outcomes import render
from ...services import users as accounts
from ...services.devices import alleys
from ...services.errors import DomainError
from ...services.users import MIN_PASSWORD
from ..forms import ConfirmForm
from . import bp

ROLE_LABELS = {"admin": _l("Admin (every alley, accounts)"), "staff": _l("Staff (assigned alleys)")}


class _Alleys(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AccountForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r, ROLE_LABELS[r]) for r in ROLES])
    alleys = _Alleys(_l("Alleys this account looks after"), choices=[])


class NewAccountForm(AccountForm):
    name = StringField(_l("User name"), validators=[
        DataRequired(), Length(max=64), Regexp(r"^[\w.@-]+$", message=_l("Letters, digits, . @ - _"))])
    password = PasswordField(_l("First password (tell it to them in person)"),
                             validators=[DataRequired(), Length(min=MIN_PASSWORD, max=256)])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"),
                             validators=[DataRequired(), Length(min=MIN_PASSWORD, max=256)])


def _alley_choices() -> list[SelectChoice]:
    return [SelectChoice(a.slug, a.name) for a in alleys.list_alleys(current_user)]


def _say(exc: DomainError) -> str:
    return render(exc.code, exc.params)


@bp.get("/accounts")
def accounts_list():
    """Every account with its role, alleys and whether it can log in."""
    users = accounts.list_users(current_user)
    return render_template("staff/accounts.html", users=users, role_labels=ROLE_LABELS)


@bp.route("/accounts/new", methods=["GET", "POST"])
def account_new():
    accounts.list_users(current_user)  # admins only (403 otherwise)
    form = NewAccountForm()
    form.alleys.choices = _alley_choices()
    if form.validate_on_submit():
        try:
            user = accounts.create_account(current_user, form.name.data, form.password.data,
                                           form.role.data, form.alleys.data or [])
        except DomainError as exc:
            flash(_say(exc), "error")
        else:
            flash(_("Account %(name)s created. It can log in now.", name=user.name), "ok")
            return redirect(url_for("staff.account_detail", user_id=user.id))
    return render_template("staff/account_form.html", form=form, user=None,
                           role_labels=ROLE_LABELS), (400 if form.errors else 200)


def _detail(user_id: int, form=None, pw_form=None, status=200):
    user = accounts.get_account(current_user, user_id)
    if form is None:
        form = AccountForm(data={"role": user.role, "alleys": [a.slug for a in user.alleys]})
    form.alleys.choices = _alley_choices()
    return render_template("staff/account_form.html", form=form, user=user,
                           pw_form=pw_form or PasswordForm(), confirm=ConfirmForm(),
                           role_labels=ROLE_LABELS), status


@bp.route("/accounts/<int:user_id>", methods=["GET", "POST"])
def account_detail(user_id: int):
    """One account: role and alleys (POST saves them), password, disable, tokens."""
    accounts.get_account(current_user, user_id)
    form = AccountForm()
    form.alleys.choices = _alley_choices()
    if form.is_submitted():
        if form.validate():
            try:
                accounts.update_account(current_user, user_id, form.role.data, form.alleys.data or [])
            except DomainError as exc:
                flash(_say(exc), "error")
            else:
                flash(_("Saved."), "ok")
                return redirect(url_for("staff.account_detail", user_id=user_id))
        return _detail(user_id, form=form, status=400)
    return _detail(user_id)


@bp.post("/accounts/<int:user_id>/password")
def account_password(user_id: int):
    pw_form = PasswordForm()
    if not pw_form.validate_on_submit():
        return _detail(user_id, pw_form=pw_form, status=400)
    user = accounts.reset_password(current_user, user_id, pw_form.password.data)
    flash(_("New password set for %(name)s; their open sessions have ended and their API "
            "tokens are revoked.", name=user.name), "ok")
    return redirect(url_for("staff.account_detail", user_id=user_id))


@bp.post("/accounts/<int:user_id>/disable")
def account_disable(user_id: int):
    """Disable (not a toggle: a repeated click leaves it disabled)."""
    if ConfirmForm().validate_on_submit():
        try:
            user = accounts.disable_account(current_user, user_id)
        except DomainError as exc:
            flash(_say(exc), "error")
        else:
            flash(_("%(name)s is disabled: logged out, API tokens stopped.", name=user.name), "ok")
    return redirect(url_for("staff.account_detail", user_id=user_id))


@bp.post("/accounts/<int:user_id>/enable")
def account_enable(user_id: int):
    """Enable (not a toggle: a repeated click leaves it enabled)."""
    if ConfirmForm().validate_on_submit():
        user = accounts.enable_account(current_user, user_id)
        flash(_("%(name)s can log in again.", name=user.name), "ok")
    return redirect(url_for("staff.account_detail", user_id=user_id))


@bp.post("/accounts/<int:user_id>/tokens/<int:token_id>/revoke")
def account_token_revoke(user_id: int, token_id: int):
    if ConfirmForm().validate_on_submit():
        row = accounts.revoke_account_token(current_user, user_id, token_id)
        flash(_("Token %(prefix)s… revoked.", prefix=row.prefix), "ok")
    return redirect(url_for("staff.account_detail", user_id=user_id))
