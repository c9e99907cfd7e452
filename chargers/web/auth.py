"""Staff login and logout (Flask-Login session, CSRF-protected, rate-limited)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter, login_manager
from ..services import users
from .forms import ConfirmForm, LoginForm

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
# Flask-Login's own words, in the page's language (its default is English only).
# (flashed as plain text: the session cannot keep a lazy string)
login_manager.login_message = _l("Please log in to access this page.")
login_manager.localize_callback = str


@login_manager.user_loader
def _load_user(session_id: str):
    return users.load_user(session_id)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if target and urlsplit(target).netloc == "" and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("staff.dashboard")


def _account_key() -> str:
    """The rate-limit key of the account being tried, whatever address tries it."""
    return "login-account:" + (request.form.get("name") or "").strip().lower()[:64]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
# A slow guess spread over many addresses still meets this one (ASVS 2.2.1).
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=_account_key)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.name.data, form.password.data)
        if user is not None:
            lang = session.get("lang")
            session.clear()  # a fresh session on login (no fixation)
            if lang:
                session["lang"] = lang
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong name or password."), "error")
    return render_template("auth/login.html", form=form), (400 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ConfirmForm()
    if form.validate_on_submit():
        users.end_sessions(current_user)
        logout_user()
        session.clear()
    return redirect(url_for("resident.index"))
