"""Forms of billing pages (Flask-WTF: validation and CSRF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from .money import YuanField

METHOD_CHOICES = [SelectChoice("cash", _l("Cash")), SelectChoice("wechat", _l("WeChat Pay")),
                  SelectChoice("alipay", _l("Alipay")), SelectChoice("bank", _l("Bank transfer")),
                  SelectChoice("other", _l("Other"))]


class LookupForm(FlaskForm):
    card = StringField(_l("Card number"), validators=[DataRequired(), Length(max=64)])
    phone_last4 = StringField(_l("Last 4 digits of your phone"),
                              validators=[DataRequired(), Regexp(r"^[0-9]{4}$")])


class ChannelsForm(FlaskForm):
    """How a resident hears from us ('My account'); `proof` is the signed lookup."""

    proof = HiddenField(validators=[DataRequired(), Length(max=512)])
    wechat = BooleanField(_l("WeChat subscription messages"))
    sms = BooleanField(_l("SMS"))
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    night = BooleanField(_l("Messages between 22:00 and 07:00 too (safety stops always go)"))
    language = SelectField(_l("Language of the messages"), choices=[
        SelectChoice("", _l("The service's language")), SelectChoice("zh", "中文"),
        SelectChoice("en", "English")], validate_choice=False)  # the service refuses others


class AccountForm(FlaskForm):
    cards = StringField(_l("Cards (separated by spaces)"),
                        validators=[DataRequired(), Length(max=400)])
    kind = SelectField(_l("Kind"), choices=[SelectChoice("prepaid", _l("Prepaid")),
                                            SelectChoice("monthly", _l("Monthly card")),
                                            SelectChoice("exempt", _l("Exempt (the community pays)"))])
    household = StringField(_l("Household (door number)"), validators=[Optional(), Length(max=64)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=64)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=32)])
    monthly_from = DateTimeLocalField(_l("Monthly card from"), validators=[Optional()])
    monthly_until = DateTimeLocalField(_l("Monthly card until"), validators=[Optional()])
    monthly_hours = IntegerField(_l("Monthly hours (empty: unlimited)"),
                                 validators=[Optional(), NumberRange(0, 744)])


def _new_request_key() -> str:
    import secrets

    return secrets.token_urlsafe(24)


class MoneyForm(FlaskForm):
    # A fresh key in every rendered form: a double click or a resubmitted page repeats
    # it, and the money is recorded once (services/idempotency.py).
    request_key = HiddenField(default=_new_request_key,
                              validators=[Optional(), Length(max=128)])
    amount = YuanField(_l("Amount (yuan)"), validators=[InputRequired()], min_fen=1,
                       max_fen=1_000_000)
    method = SelectField(_l("Method"), choices=METHOD_CHOICES)
    receipt = StringField(_l("Receipt number"), validators=[Optional(), Length(max=64)])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


class TariffForm(FlaskForm):
    electricity_per_kwh = YuanField(_l("Electricity (yuan per kWh)"),
                                    validators=[InputRequired()], max_fen=100000)
    service_scheme = SelectField(_l("Service fee"), choices=[
        SelectChoice("tier_hour", _l("By power tier, per hour")), SelectChoice("kwh", _l("Per kWh")),
        SelectChoice("flat_hour", _l("Flat, per hour")), SelectChoice("none", _l("None"))])
    service_tiers = TextAreaField(
        _l("Power tiers: one per line, 'max watts: yuan per hour'"),
        default="180: 0.20\n360: 0.30\n540: 0.40\n800: 0.60\n1200: 0.80", validators=[Optional()])
    service_price = YuanField(_l("Service fee (yuan per kWh or per hour)"),
                              default=0, validators=[Optional()], max_fen=100000)
    step_minutes = IntegerField(_l("Billing step (minutes)"), default=1,
                                validators=[DataRequired(), NumberRange(1, 1440)])
    free_minutes = IntegerField(_l("Free minutes"), default=0,
                                validators=[Optional(), NumberRange(0, 1440)])
    minimum = YuanField(_l("Minimum (yuan)"), default=0, validators=[Optional()],
                        max_fen=100000)
    cap = YuanField(_l("Cap per session (yuan, empty: none)"), validators=[Optional()],
                    max_fen=1000000)
    full_float_minutes = IntegerField(_l("Minutes charged after full (empty: until unplugged)"),
                                      validators=[Optional(), NumberRange(0, 1440)])
    electricity_yuan_exact = StringField(
        _l("Electricity to 0.0001 yuan per kWh (e.g. 0.5583; empty: the price above)"),
        validators=[Optional(), Regexp(r"^[0-9]{1,4}(\.[0-9]{1,5})?$")])
    tou_windows = TextAreaField(
        _l("Time-of-use: one window per line, 'HH:MM-HH:MM yuan per kWh name' "
           "(e.g. 08:00-21:00 0.5583 peak); empty: one price all day"),
        validators=[Optional(), Length(max=2000)])
    service_cap_cents_per_hour = YuanField(
        _l("Regulator's cap on the service fee (yuan per hour, empty: none)"),
        validators=[Optional()], max_fen=100000)
    service_cap_cents_per_kwh = YuanField(
        _l("Regulator's cap on the service fee (yuan per kWh, empty: none)"),
        validators=[Optional()], max_fen=100000)
    occupancy_cents_per_hour = YuanField(
        _l("Occupancy fee after full (yuan per hour, empty: none)"),
        validators=[Optional()], max_fen=100000)
    occupancy_grace_minutes = IntegerField(_l("Occupancy grace after full (minutes)"),
                                           validators=[Optional(), NumberRange(0, 1440)])
    effective_from = DateTimeLocalField(_l("Takes effect at (alley time)"),
                                        validators=[Optional()])
    preview_only = BooleanField(_l("Preview only"))


class DecisionForm(FlaskForm):
    account_id = IntegerField(_l("Account number"), validators=[Optional()])
    note = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])


class SessionFilterForm(FlaskForm):
    """The staff sessions list and its CSV: local end dates of the alley (inclusive), a
    card, a page (GET, no CSRF)."""

    class Meta:
        csrf = False

    start = DateField(_l("Ended from"), validators=[Optional()])
    end = DateField(_l("Ended to"), validators=[Optional()])
    card = StringField(_l("Card"), validators=[Optional(), Length(max=64)])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)])


class TopupLimitsForm(FlaskForm):
    """An alley's online top-up limits in yuan; empty: the deployment's default."""

    topup_min = YuanField(_l("Smallest online top-up (yuan, empty: default)"),
                          validators=[Optional()], min_fen=1, max_fen=10_000_000)
    topup_max = YuanField(_l("Largest online top-up (yuan, empty: default)"),
                          validators=[Optional()], min_fen=1, max_fen=10_000_000)
