"""A fault's reading with its unit and what it measures, for the staff pages (the
protocol's `value` is a bare number whose meaning depends on the fault code)."""

from __future__ import annotations

from flask_babel import gettext as _

from . import bp


def reading_text(code: str, value: float | None) -> str:
    """E.g. "78.5 °C (socket temperature)"; a bare number for codes without a known unit."""
    if value is None:
        return ""
    n = f"{value:g}"
    known = {
        "over_temperature": lambda: _("%(v)s °C (socket temperature)", v=n),
        "smoke": lambda: _("%(v)s (smoke sensor level)", v=n),
        "over_current": lambda: _("%(v)s A (current)", v=n),
        "overload": lambda: _("%(v)s W (power drawn)", v=n),
        "over_voltage": lambda: _("%(v)s V (supply voltage)", v=n),
        "under_voltage": lambda: _("%(v)s V (supply voltage)", v=n),
        "ground_fault": lambda: _("%(v)s mA (leakage current)", v=n),
    }
    return known[code]() if code in known else n


@bp.context_processor
def _readings() -> dict:
    return {"reading_text": reading_text}
