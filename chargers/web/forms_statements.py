"""Forms of the monthly-close pages (Flask-WTF: validation and CSRF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from .money import YuanField

KWH = Regexp(r"^[0-9]{1,9}(\.[0-9]{1,3})?$", message=_l("A number of kWh, e.g. 1234.5"))


class GridBillForm(FlaskForm):
    grid_kwh = StringField(_l("Grid energy for the month (kWh)"), validators=[Optional(), KWH])
    reading_start_kwh = StringField(_l("Or: meter reading at the start (kWh)"),
                                    validators=[Optional(), KWH])
    reading_end_kwh = StringField(_l("Meter reading at the end (kWh)"),
                                  validators=[Optional(), KWH])
    amount = YuanField(_l("Bill amount (yuan)"), validators=[InputRequired()], max_fen=10**10)
    note = StringField(_l("Note"), validators=[Optional(), Length(max=255)])


class PublishForm(FlaskForm):
    """Only the CSRF token."""


class PublishConfirmForm(FlaskForm):
    """Publishing (公示) is asked for twice: the box ticked here, and the browser's
    confirmation of the button (data-confirm)."""

    confirm = BooleanField(_l("I have checked these totals and the grid bill: show them to "
                              "every resident"), validators=[DataRequired()])


class CorrectionForm(FlaskForm):
    """A correction of a published 公示: the grid bill as it should have read, and why."""

    grid_kwh = StringField(_l("Grid energy (kWh)"), validators=[DataRequired(), Length(max=20)])
    amount = YuanField(_l("Grid bill (yuan)"), validators=[InputRequired()], max_fen=10**10)
    reason = TextAreaField(_l("Why it is corrected (shown to residents)"),
                           validators=[DataRequired(), Length(max=500)])


class ReminderSettingsForm(FlaskForm):
    low_balance = YuanField(_l("Remind when a prepaid balance is below (yuan)"),
                            validators=[InputRequired()], max_fen=1_000_000)
    monthly_days = IntegerField(_l("Remind this many days before a monthly card ends"),
                                validators=[InputRequired(), NumberRange(min=0, max=60)])
