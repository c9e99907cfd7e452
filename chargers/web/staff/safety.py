"""Staff pages of safety: a pile's configuration (desired against reported), an
alley's device settings, a session's risk with its power and temperature curve, and
the riskiest cards of the month with "battery checked"."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, url_for
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import FloatField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, StopValidation

from ... import outcomes, settings
from ...labels import (
    CONFIG_KEY_LABELS,
    CONFIG_KEY_UNITS,
    CONFIG_STATE_LABELS,
    ENDING_LABELS,
    GUARD_REASON_LABELS,
    OFFLINE_POLICY_LABELS,
    RISK_LABELS,
    RISK_REASON_LABELS,
    STOP_ASKED_LABELS,
)
from ...models import utcnow
from ...services.charging import endings
from ...services.devices import alleys, piles
from ...services.devices import config as pile_config
from ...services.errors import DomainError
from ...services.safety import cards, curves
from ..charts import line_chart
from . import bp

# The temperature axis of a session's chart spans 10 °C at least: a port that warmed a
# degree or two is drawn as the small change it is.
CHART_TEMP_SPAN_C = 10.0


def _asked(key: str) -> LazyString:
    """A config key's form label: its name and the unit it is typed in."""
    unit = CONFIG_KEY_UNITS.get(key)
    if unit is None:
        return CONFIG_KEY_LABELS[key]
    return LazyString(lambda: _("%(name)s (%(unit)s)", name=CONFIG_KEY_LABELS[key],
                                unit=unit[0]))


def config_value(key: str, value) -> str:
    """A config key's value as staff read it: in the unit the form asks it in, a
    policy in words ("—": not set)."""
    if value is None:
        return "—"
    if key == "offline_policy":
        return str(OFFLINE_POLICY_LABELS.get(value, value))
    unit, per = CONFIG_KEY_UNITS.get(key, ("", 1))
    return f"{_in_unit(value, per):g} {unit}".strip()


def _in_unit(value, per: int):
    n = value / per
    return int(n) if n == int(n) else round(n, 2)


class _Number(FloatField):
    """A number typed in a config key's unit: a sentence, not a parser's words, when it
    is not one, and no range error on top of that."""

    def __init__(self, *args, whole: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.whole = whole

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("Type a number, like 7.5.") if not self.whole
                             else _("Type a whole number.")) from None
        if self.whole and self.data is not None:
            if self.data != int(self.data):
                self.data = None
                raise ValueError(_("Type a whole number."))
            self.data = int(self.data)

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()


def _number(key: str, lo: float, hi: float, *, whole: bool = True) -> _Number:
    unit = CONFIG_KEY_UNITS[key][0]
    message = LazyString(lambda: _("From %(lo)s to %(hi)s %(unit)s.", lo=f"{lo:g}",
                                   hi=f"{hi:g}", unit=unit))
    return _Number(_asked(key), validators=[Optional(), NumberRange(lo, hi, message=message)],
                   whole=whole)


class DeviceSettingsForm(FlaskForm):
    """The protocol's config keys, each in the unit staff think in (CONFIG_KEY_UNITS:
    the 充满自停 hold in minutes, the longest session in hours); empty = the default
    (alley) or the alley's (pile)."""

    # The protocol's own bounds (ConfigSettings) are checked by the service; these keep
    # the typed number sane, in the field's unit (1 s .. 24 h hold; up to 7 days).
    max_power_w = _number("max_power_w", 1, 100000)
    overload_hold_s = _number("overload_hold_s", 1, 3600)
    full_stop_power_w = _number("full_stop_power_w", 0, 10000)
    full_stop_hold_s = _number("full_stop_hold_s", 0.01, 1440, whole=False)
    max_session_s = _number("max_session_s", 0.01, 168, whole=False)
    offline_policy = SelectField(_asked("offline_policy"),
                                 choices=[SelectChoice("", "—"),
                                          *(SelectChoice(k, v) for k, v in OFFLINE_POLICY_LABELS.items())],
                                 validators=[Optional()])
    offline_max_minutes = _number("offline_max_minutes", 1, 10080)

    stored: dict

    @classmethod
    def of(cls, settings: dict | None) -> DeviceSettingsForm:
        """The form filled from stored settings (the protocol's units)."""
        form = cls(data={k: _in_unit(v, CONFIG_KEY_UNITS[k][1]) if k in CONFIG_KEY_UNITS
                         and v is not None else v for k, v in (settings or {}).items()})
        form.stored = dict(settings or {})
        return form

    def values(self) -> dict:
        """The settings typed, in the protocol's units. A field sent back as it was shown
        keeps the stored value (shown rounded: 5000 s is 1.39 h, and must stay 5000 s)."""
        out = {}
        for k in CONFIG_KEY_LABELS:
            v = getattr(self, k).data
            if v in (None, ""):
                continue
            if k not in CONFIG_KEY_UNITS:
                out[k] = v
                continue
            per, was = CONFIG_KEY_UNITS[k][1], self.stored.get(k)
            out[k] = was if was is not None and _in_unit(was, per) == v else round(v * per)
        return out


def _hints(alley, for_pile: bool) -> dict[str, str]:
    """What each field left empty means, under the field."""
    got = pile_config.inherited(settings.limits(current_app.config), alley, for_pile=for_pile)
    out = {}
    for key in CONFIG_KEY_LABELS:
        if key not in got:
            out[key] = _("Empty: the pile's own setting.")
            continue
        value, source = got[key]
        out[key] = (_("Empty: the alley's, %(value)s.", value=config_value(key, value))
                    if source == "alley" else
                    _("Empty: the default, %(value)s.", value=config_value(key, value)))
    return out


class CardCheckForm(FlaskForm):
    card = StringField(_l("Card"), validators=[DataRequired(), Length(max=64)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=1000)])


@bp.context_processor
def _labels() -> dict:
    return {"risk_labels": RISK_LABELS, "risk_reason_labels": RISK_REASON_LABELS,
            "config_state_labels": CONFIG_STATE_LABELS, "config_key_labels": CONFIG_KEY_LABELS,
            "offline_policy_labels": OFFLINE_POLICY_LABELS,
            "guard_reason_labels": GUARD_REASON_LABELS, "stop_asked_labels": STOP_ASKED_LABELS,
            "pile_config_view": _config_view, "config_value": config_value}


def _config_view(pile) -> dict:
    """The pile's configuration for the pages: a v1 pile's desired settings are the
    ones the backend enforces for it."""
    return pile_config.view(pile, settings.limits(current_app.config))



def _saved(setter, key: str, form: DeviceSettingsForm, message: str) -> bool:
    """Save desired device settings (an alley's or a pile's overrides): flash the
    outcome; True when saved."""
    try:
        setter(current_user, key, form.values(), settings.limits(current_app.config), utcnow())
    except DomainError as exc:
        flash(outcomes.render(exc.code, exc.params), "error")
        return False
    flash(message, "ok")
    return True


@bp.route("/alleys/<slug>/device-settings", methods=["GET", "POST"])
def alley_device_settings(slug: str):
    """The config keys desired for every pile of the alley."""
    alley = alleys.get_alley(current_user, slug)
    form = DeviceSettingsForm.of(alley.device_settings)
    if form.validate_on_submit() and _saved(pile_config.set_alley_settings, slug, form,
                                            _("Saved. Piles that take remote configuration "
                                              "are sent it now.")):
        return redirect(url_for("staff.alley_detail", slug=slug))
    return render_template("staff/device_settings.html", form=form, alley=alley, pile=None,
                           hints=_hints(alley, for_pile=False))


@bp.route("/piles/<pile_id>/config", methods=["GET", "POST"])
def pile_config_page(pile_id: str):
    """The pile's configuration: desired against reported, and its own overrides."""
    pile = piles.get_pile(current_user, pile_id)
    cfg = _config_view(pile)
    form = DeviceSettingsForm.of(cfg["overrides"])
    if form.validate_on_submit() and _saved(pile_config.set_pile_overrides, pile_id, form,
                                            _("Saved.")):
        return redirect(url_for("staff.pile_config_page", pile_id=pile_id))
    return render_template("staff/device_settings.html", form=form, alley=pile.alley,
                           pile=pile, cfg=cfg, hints=_hints(pile.alley, for_pile=True))


def _tick_every(span_s: float) -> int:
    """The chart's time ticks: four to eight across the charge, on round minutes."""
    for step in (300, 600, 1800, 3600):
        if span_s <= step * 6:
            return step
    return 7200


@bp.get("/sessions/<int:session_id>")
def session_detail(session_id: int):
    """A session's risk grade and reasons beside its power and temperature curve."""
    s = curves.get_session(current_user, session_id)
    g.tz = s.pile.alley.timezone
    rows = curves.curve(s)
    chart = None
    if rows:
        t0 = s.started_at or rows[0].ts
        secs = [max(0.0, (r.ts - t0).total_seconds()) for r in rows]
        span = max(secs) if secs else 0
        marks = []
        if s.guard_stop_at is not None and s.guard_reason:
            marks.append(((s.guard_stop_at - t0).total_seconds(), _("Stop asked")))
        chart = line_chart(_("Power and port temperature, by time since the start (h:mm)"), secs,
                           [(_("Power"), [r.power_w for r in rows], "#1d4ed8", "W"),
                            (_("Temperature"), [r.temp_c for r in rows], "#c2410c", "°C")],
                           tick_every_s=_tick_every(span), marks=marks,
                           width=360, height=200, min_span=CHART_TEMP_SPAN_C)
    return render_template("staff/session_risk.html", s=s, chart=chart, readings=len(rows),
                           ending=endings.of_session(s), ending_labels=ENDING_LABELS,
                           stop_asked=endings.stop_asked(s))


@bp.route("/alleys/<slug>/risk", methods=["GET", "POST"])
def alley_risk(slug: str):
    """The riskiest cards of the month, with "battery checked" and its note."""
    alley = alleys.get_alley(current_user, slug)
    g.tz = alley.timezone
    form = CardCheckForm()
    if form.validate_on_submit():
        try:
            row = cards.mark_checked(current_user, slug, form.card.data, form.note.data or "",
                                     utcnow())
        except DomainError as exc:
            flash(outcomes.render(exc.code, exc.params), "error")
        else:
            flash(_("Marked checked: %(card)s.", card=row.card), "ok")  # as the alley spells it
            return redirect(url_for("staff.alley_risk", slug=slug))
    return render_template("staff/alley_risk.html", alley=alley, form=form,
                           rows=cards.riskiest(current_user, slug, utcnow()))
