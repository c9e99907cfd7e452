"""Money and tariffs as pages show them: fen as yuan text (integer arithmetic only) and
the posted prices of an alley (明码标价), electricity and service fee apart."""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext as _

from ..models import Alley, utcnow


def yuan(fen: int | None) -> str:
    """1234 → "¥12.34"; None → "—". No float touches the amount."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


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
    words = {
        "prepaid": _("Prepaid"), "monthly": _("Monthly card"),
        "exempt": _("Exempt (the community pays)"),
        "resident": _("Resident balance"), "electricity": _("Electricity takings"),
        "service": _("Service fee takings"), "cash": _("Cash and payments received"),
        "covered": _("Paid by the community"), "waived": _("Waived"),
        "charge": _("Charge"), "topup": _("Top-up"), "refund": _("Refund"),
        "adjustment": _("Adjustment"), "reversal": _("Reversal"),
        "writeoff": _("Debt written off"), "written_off": _("Debts written off"),
        "occupancy": _("Occupancy fee takings"),
        "card_sale": _("Monthly card sold"), "card_sales": _("Monthly cards sold"),
        "no_card": _("No card"), "unknown_card": _("Unknown card"),
        "other_alley": _("Card of another alley"),
        "charged": _("Charged"), "review": _("In review"),
        "tier_hour": _("By power tier, per hour"), "kwh": _("Per kWh"),
        "flat_hour": _("Flat, per hour"), "none": _("None"),
        "balance": _("balance used up"), "monthly_hours": _("monthly hours used up"),
        "monthly_busy": _("another session on the monthly card"),
        "method:cash": _("Cash"), "method:wechat": _("WeChat Pay"),
        "method:alipay": _("Alipay"), "method:bank": _("Bank transfer"),
        "method:other": _("Other"),
    }
    return words.get(code or "", code or "—")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.filters["kwh"] = kwh
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.globals["step_rule"] = step_rule
    app.jinja_env.globals["posted_tariff"] = posted_tariff
    app.jinja_env.globals["billing_word"] = billing_word
    app.jinja_env.globals["audit_text"] = audit_text
    app.jinja_env.globals["session_status_label"] = session_status_label


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
