"""Web forms (Flask-WTF: validation and CSRF on every form)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from ..protocol.codes import MAX_PORTS, PILE_ID_PATTERN
from .money import YuanField


class LoginForm(FlaskForm):
    name = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class AlleyForm(FlaskForm):
    slug = StringField(
        _l("Slug (for the web address)"),
        validators=[DataRequired(), Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$")],
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    street = StringField(_l("Street (街道)"), validators=[Optional(), Length(max=120)])
    community = StringField(_l("Community (社区)"), validators=[Optional(), Length(max=120)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=255)])
    timezone = StringField(_l("Time zone"), validators=[Optional(), Length(max=64)])
    contacts = TextAreaField(_l("Contacts"), validators=[Optional(), Length(max=2000)])
    tariff_per_kwh = YuanField(_l("Tariff (yuan per kWh)"), validators=[Optional()],
                               max_fen=100000)
    auto_cutoff = BooleanField(_l("Cut a port off at once on smoke or over-temperature"))
    allow_unbilled = BooleanField(_l("Let sessions on unknown cards charge (reviewed later)"))


class PileForm(FlaskForm):
    id = StringField(
        _l("Device serial"), validators=[DataRequired(), Regexp(PILE_ID_PATTERN)]
    )
    label = StringField(_l("Label"), validators=[Optional(), Length(max=64)])
    ports = IntegerField(_l("Ports"), validators=[DataRequired(), NumberRange(1, MAX_PORTS)])
    location_note = StringField(_l("Where it stands"), validators=[Optional(), Length(max=255)])
    enabled = BooleanField(_l("In service"), default=True)
    power_limit_w = IntegerField(_l("This pile's own supply limit for charging (W)"),
                                 validators=[Optional(), NumberRange(0, 1_000_000)])


class ConfirmForm(FlaskForm):
    """A button that changes state: only the CSRF token."""


class ReportForm(FlaskForm):
    """A resident reports a problem with a pile (报修). Port choices are set per pile."""

    port = SelectField(_l("Which port"), coerce=str, validators=[DataRequired()])
    kind = RadioField(_l("What is wrong"), validators=[DataRequired()], choices=[
        SelectChoice("no_power", _l("No power")),
        SelectChoice("damaged", _l("Damaged socket")),
        SelectChoice("burning", _l("Burning smell or smoke")),
        SelectChoice("other", _l("Something else")),
    ])
    details = TextAreaField(_l("Other problem, in your words (optional)"),
                            validators=[Optional(), Length(max=500)])
    photo = FileField(_l("Photo (optional)"), validators=[
        FileAllowed(["jpg", "jpeg", "png", "webp", "gif"], _l("A photo, please"))])
    phone = StringField(_l("Your phone (optional, so staff can call back)"),
                        validators=[Optional(), Length(max=32),
                                    Regexp(r"^\+?[0-9][0-9 -]{4,30}$",
                                           message=_l("That does not look like a phone number"))])
