"""Money and tariffs as pages show them: fen as yuan text (integer arithmetic only) and
the posted prices of an alley (明码标价), electricity and service fee apart."""

from __future__ import annotations

from decimal import Decimal

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import ValidationError

from .. import money as _money
from ..models import Alley, utcnow

MONEY_ERRORS = {
    "not_a_number": _l("Type an amount in yuan, e.g. 50 or 50.50."),
    "too_precise": _l("At most two decimals: e.g. 50.05."),
    "negative": _l("The amount cannot be negative."),
    "bad_separator": _l("Write the amount without separators, e.g. 1234.50."),
    "too_large": _l("That amount is too large."),
}


def yuan(fen: int | None) -> str:
    """1234 → "¥12.34"; None → "—" (chargers/money.py: no float touches the amount)."""
    return _money.yuan_text(fen)


class YuanField(StringField):
    """A form field in yuan ("50", "50.5", "¥50", "1,234.50") whose `.data` is integer
    fen (None when left empty), parsed by chargers/money.parse_yuan. `min_fen` /
    `max_fen` bound it; a refusal is a sentence in the form."""

    def __init__(self, label=None, validators=None, *, min_fen: int = 0,
                 max_fen: int | None = None, allow_negative: bool = False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.min_fen, self.max_fen, self.allow_negative = min_fen, max_fen, allow_negative
        self.render_kw = {"inputmode": "decimal", "autocomplete": "off",
                          **(self.render_kw or {})}

    def process_formdata(self, valuelist):
        self.raw_text = valuelist[0] if valuelist else ""
        try:
            self.data = _money.parse_yuan(self.raw_text,
                                          allow_negative=self.allow_negative,
                                          max_fen=self.max_fen)
        except _money.MoneyError as exc:
            self.data = None
            raise ValueError(str(MONEY_ERRORS[exc.code])) from exc

    def pre_validate(self, form):
        if self.data is not None and not self.allow_negative and self.data < self.min_fen:
            raise ValidationError(_("At least %(min)s.", min=yuan(self.min_fen)))

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return _money.yuan_plain(self.data) if isinstance(self.data, int) else ""


def step_rule(step_minutes: int) -> str:
    """The billing step as a sentence for residents."""
    if step_minutes <= 1:
        return _("Time is charged per started minute.")
    if step_minutes % 60 == 0:
        return _("Time is charged per started %(n)d hour(s).", n=step_minutes // 60)
    return _("Time is charged per started %(n)d minutes.", n=step_minutes)


def posted_tariff(alley: Alley):
    """The tariff in force now for an alley (or None), for the tariff block."""
    from ..services.billing import tariffs

    return tariffs.current(alley, utcnow())


def billing_word(code: str | None) -> str:
    """A billing code (account kind, ledger account kind, posting kind, review reason,
    billing state, service scheme) in the page's language."""
    from ..labels import BILLING_LABELS

    label = BILLING_LABELS.get(code or "")
    return str(label) if label is not None else (code or "—")


def ledger_amount(kind: str, balance_cents: int) -> int:
    """An alley ledger account's balance with the sign of what happened: cash received,
    amounts covered or waived are debits in the ledger (negative) but happened as
    positive amounts."""
    from ..labels import DEBIT_ACCOUNT_KINDS

    return -balance_cents if kind in DEBIT_ACCOUNT_KINDS else balance_cents


def session_billing_word(billing: str | None, account_kind: str | None = None) -> str:
    """A session's billing state; one a monthly card covered says so (月卡), and only an
    exempt account's says the community pays (社区承担)."""
    return billing_word(covered_code(billing, account_kind))


def covered_code(billing: str | None, account_kind: str | None) -> str:
    """The label code of a billing state or ledger account kind, with `covered` split
    by who bears it: `covered:monthly` (a monthly card) or `covered:exempt` (the
    community); plain `covered` when the account is not known."""
    if billing == "covered" and account_kind in ("monthly", "exempt"):
        return f"covered:{account_kind}"
    return billing or ""


def per_kwh(fen: int | None) -> str:
    """A price per kWh as residents say it: "¥0.62 / kWh"; in Chinese "0.62 元/度"."""
    if fen is None:
        return "—"
    return _("¥%(yuan)s / kWh", yuan=_money.yuan_plain(fen))


def per_kwh_exact(millifen: int | None) -> str:
    """A price per kWh kept to 0.001 fen (a time-of-use window, ¥0.5583): four decimals
    of yuan when it has them, else as `per_kwh`."""
    if millifen is None:
        return "—"
    if millifen % 1000 == 0:
        return per_kwh(millifen // 1000)
    text = f"{Decimal(millifen) / 100000:.5f}".rstrip("0")
    return _("¥%(yuan)s / kWh", yuan=text)


def _notice_versions(mc) -> list:
    """A published month's 公示 versions, newest first (services/billing/monthly_close)."""
    from ..services.billing import monthly_close  # web helpers load before the services

    return monthly_close.versions(mc)


def exact_yuan(fen_text: str | None) -> str:
    """An exact amount in fen as text ("12.3456", before rounding) → "¥0.123456"."""
    if fen_text in (None, ""):
        return "—"
    value = Decimal(str(fen_text)) / 100
    text = f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else f"{value:f}"
    if "." not in text or len(text.split(".")[1]) < 2:
        text = f"{value:.2f}"
    return f"-¥{text[1:]}" if text.startswith("-") else f"¥{text}"


def per_hour(fen: int | None) -> str:
    """A price per hour: "¥0.40 / hour"; in Chinese "0.40 元/小时"."""
    if fen is None:
        return "—"
    return _("¥%(yuan)s / hour", yuan=_money.yuan_plain(fen))


def init_app(app: Flask) -> None:
    app.jinja_env.globals["per_kwh"] = per_kwh
    app.jinja_env.globals["per_kwh_exact"] = per_kwh_exact
    app.jinja_env.globals["notice_versions"] = _notice_versions
    app.jinja_env.globals["per_hour"] = per_hour
    app.jinja_env.globals["exact_yuan"] = exact_yuan
    app.jinja_env.globals["ledger_amount"] = ledger_amount
    app.jinja_env.globals["session_billing_word"] = session_billing_word
    app.jinja_env.globals["month_income"] = month_income
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.filters["yuan_plain"] = _money.yuan_plain
    app.jinja_env.filters["kwh"] = kwh
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.globals["step_rule"] = step_rule
    app.jinja_env.globals["posted_tariff"] = posted_tariff
    app.jinja_env.globals["billing_word"] = billing_word
    app.jinja_env.globals["audit_text"] = audit_text
    app.jinja_env.globals["session_status_label"] = session_status_label
    from .. import labels

    def word(table):
        return lambda code: str(table.get(code, code or ""))

    app.jinja_env.filters["pay_channel"] = word(labels.PAY_CHANNEL_LABELS)
    app.jinja_env.filters["pay_provider"] = word(labels.PAY_PROVIDER_LABELS)
    app.jinja_env.filters["order_state"] = word(labels.ORDER_STATE_LABELS)
    app.jinja_env.filters["refund_state"] = word(labels.REFUND_STATE_LABELS)
    app.jinja_env.filters["notice_outcome"] = word(labels.NOTICE_OUTCOME_LABELS)
    app.jinja_env.filters["mismatch_kind"] = word(labels.MISMATCH_LABELS)
    app.jinja_env.filters["mismatch_status"] = word(labels.MISMATCH_STATUS_LABELS)
    app.jinja_env.filters["risk_grade"] = word(labels.RISK_LABELS)


def session_status_label(code: str | None) -> str:
    """A charging session's status (active, stopped, timeout, orphan) in words."""
    from ..labels import SESSION_STATUS_LABELS

    label = SESSION_STATUS_LABELS.get(code or "")
    return str(label) if label is not None else (code or "—")


def audit_text(action: str, data) -> str:
    """A billing audit entry (action code + its data) in the page's language."""
    from ..labels import MONEY_AUDIT_LABELS

    label = MONEY_AUDIT_LABELS.get(action)
    if label is None:
        return action
    params = dict(data or {})
    if "reason" in params:  # a guard's reason code, in words
        params["reason"] = billing_word(params["reason"])
    try:
        return str(label) % params
    except (KeyError, TypeError, ValueError):
        return str(label)


def kwh(wh) -> str:
    """Wh (a number or exact text) → kWh text with 3 decimals ("1500" → "1.500")."""
    from decimal import ROUND_HALF_UP, Decimal

    if wh is None:
        return "—"
    value = Decimal(str(wh)) / Decimal(1000)
    return str(value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def duration(seconds: int | None) -> str:
    """Seconds as "2 h 05 min" / "7 min"."""
    if seconds is None:
        return "—"
    minutes = int(seconds) // 60
    if minutes < 60:
        return _("%(m)d min", m=minutes)
    return _("%(h)d h %(m)02d min", h=minutes // 60, m=minutes % 60)


def month_income(mc):
    """A closed month's figures from the ledger (by posting time, as the close counts
    them): for what the close keeps as one number, e.g. covered by monthly cards apart
    from covered by the community."""
    from ..services.billing import income

    return income.figures(mc.alley_id, mc.period_start, mc.period_end)
