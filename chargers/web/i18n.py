"""Language and time zone: Chinese first, English on request; times shown in the
alley's zone."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, current_app, g, request, session, url_for
from flask_babel import format_datetime, get_locale, refresh
from flask_babel import gettext as _

from ..labels import RESIDENT_CUTOFF_LABELS


def select_locale() -> str:
    """?lang= (remembered in the session), else the saved choice, else the browser's
    Accept-Language, else Chinese."""
    langs = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in langs:
        session["lang"] = asked
        return asked
    saved = session.get("lang")
    if saved in langs:
        return saved
    # Werkzeug matches "zh-CN", "en-GB"… on their primary tag.
    return request.accept_languages.best_match(langs) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    """The zone of the alley being shown (set by the view in g.tz), else the default."""
    return getattr(g, "tz", None) or current_app.config["DEFAULT_TIMEZONE"]


def local_time(value: datetime | None, fmt: str = "MM-dd HH:mm") -> str:
    """A UTC datetime as wall-clock time in the page's zone."""
    if value is None:
        return "—"
    return format_datetime(value, fmt)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long since `value`, in words a resident reads at a glance."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    minutes = max(0, int((now - value).total_seconds() // 60))
    if minutes < 1:
        return _("just now")
    if minutes < 60:
        return _("%(n)d min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)dh %(m)dm", h=hours, m=minutes)
    return _("%(d)d days", d=hours // 24)


def for_how_long(value: datetime | None, now: datetime | None = None) -> str:
    """"for 5 min" (已 5 分钟), or "just now" alone: never "for just now"."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    if (now - value).total_seconds() < 60:
        return _("just now")
    return _("for %(d)s", d=ago(value, now))


def full_since(value: datetime | None, now: datetime | None = None) -> str:
    """A finished port: how long ago the battery was full, and that the bike is still
    there (so nobody takes it for a free port)."""
    now = now or datetime.now(UTC)
    if value is None or (now - value).total_seconds() < 60:
        return _("Full just now, bike still plugged in")
    return _("Full %(d)s ago, bike still plugged in", d=ago(value, now))


def ending_label(code: str | None) -> str:
    """Why a session ended (services/charging/endings.py), in the page's language; "" unknown."""
    from ..labels import ENDING_LABELS

    label = ENDING_LABELS.get(code or "")
    return str(label) if label is not None else ""


def finished_since(value: datetime | None, ended: str | None,
                   now: datetime | None = None) -> str:
    """A finished port: "full" only when the pile said so; else why it stopped (or
    just that it stopped), and that the bike is still there."""
    if ended == "full":
        return full_since(value, now)
    now = now or datetime.now(UTC)
    why = ending_label(ended)
    just_now = value is None or (now - value).total_seconds() < 60
    if not why:
        if just_now:
            return _("Charging ended just now, bike still plugged in")
        return _("Charging ended %(d)s ago, bike still plugged in", d=ago(value, now))
    if just_now:
        return _("Stopped just now (%(why)s), bike still plugged in", why=why)
    return _("Stopped %(d)s ago (%(why)s), bike still plugged in", d=ago(value, now), why=why)


def overstay_text(minutes: int, ended: str | None) -> str:
    """An overstaying port's nudge: "full for 40 min" only after a full charge."""
    if ended == "full":
        return _("Full for %(n)d min, please move your bike", n=minutes)
    return _("Stopped %(n)d min ago, please move your bike", n=minutes)


def time_left(est) -> str:
    """A port's estimated time left in words; says so plainly when there is no basis."""
    if est is None or est.minutes is None:
        return _("No basis yet to estimate when it will be done")
    if est.minutes <= 1:
        return _("Almost done")
    return _("About %(d)s left", d=duration(est.minutes))


def duration(minutes: int) -> str:
    """A number of minutes in words ("25 min", "1h 20m")."""
    if minutes < 60:
        return _("%(n)d min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    return _("%(h)dh %(m)dm", h=hours, m=minutes)


def power_energy(est) -> str:
    """The latest reading of a port in use: "380 W · 0.42 kWh so far"."""
    if est is None or est.power_w is None:
        return ""
    return _("%(w)d W · %(kwh).2f kWh so far", w=round(est.power_w),
             kwh=(est.energy_wh or 0) / 1000)


def short_ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long since `value` in two or three characters, for a port cell."""
    if value is None:
        return ""
    now = now or datetime.now(UTC)
    minutes = max(0, int((now - value).total_seconds() // 60))
    if minutes < 60:
        return _("%(n)dm", n=minutes)
    if minutes < 48 * 60:
        return _("%(n)dh", n=minutes // 60)
    return _("%(n)dd", n=minutes // (24 * 60))


STATE_SYMBOLS = {
    # A shape beside every colour, so no state is told by colour alone.
    "free": "○",
    "in_use": "⚡\ufe0e",
    "finished": "✓",
    "fault": "!",
    "offline": "×",
    "out_of_service": "—",
}


def state_symbol(state: str) -> str:
    """The symbol shown with a state's colour."""
    return STATE_SYMBOLS.get(state, "?")


def lang_url(code: str) -> str:
    """This page in another language (keeps the path and the other query args)."""
    args = request.args.to_dict()
    args["lang"] = code
    if request.endpoint and request.url_rule is not None and request.method == "GET":
        try:
            return url_for(request.endpoint, **(request.view_args or {}), **args)
        except Exception:  # an endpoint that cannot be rebuilt: same path
            pass
    return "?lang=" + code


def state_label(state: str) -> str:
    """A resident-facing port state in the page's language."""
    labels = {
        "free": _("Free"),
        "in_use": _("In use"),
        "finished": _("Finished"),
        "fault": _("Fault"),
        "offline": _("Offline"),
        "out_of_service": _("Out of service"),
    }
    return labels.get(state, state)


def _fresh_choice() -> None:
    """Decide language and zone anew for each request. Flask-Babel caches them in `g`,
    which outlives a request when an app context is already pushed (tests, CLI)."""
    refresh()


def _vary(resp):
    """Pages follow the browser's language (and the chosen one, in the session cookie):
    a shared cache must keep one copy per language."""
    if resp.mimetype == "text/html":
        resp.vary.add("Accept-Language")
        resp.vary.add("Cookie")
    return resp


def init_template_helpers(app: Flask) -> None:
    """Filters and globals every template can use; a fresh locale per request."""
    app.before_request(_fresh_choice)
    app.after_request(_vary)
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["short_ago"] = short_ago
    app.jinja_env.filters["for_how_long"] = for_how_long
    app.jinja_env.filters["full_since"] = full_since
    app.jinja_env.globals["time_left"] = time_left
    app.jinja_env.globals["finished_since"] = finished_since
    app.jinja_env.globals["overstay_text"] = overstay_text
    app.jinja_env.globals["ending_label"] = ending_label
    app.jinja_env.globals["power_energy"] = power_energy
    app.jinja_env.globals["duration"] = duration
    app.jinja_env.globals["state_symbol"] = state_symbol
    app.jinja_env.globals["lang_url"] = lang_url
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["state_label"] = state_label
    app.jinja_env.globals["resident_cutoff_labels"] = RESIDENT_CUTOFF_LABELS
    app.jinja_env.add_extension("jinja2.ext.i18n")
