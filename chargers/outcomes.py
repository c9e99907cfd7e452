"""Outcome codes: every refusal a service raises and every entry it writes in an audit
trail is a code with parameters, never a sentence. This catalogue holds each code's text
once, in English and marked for Babel; pages render it in the page's language, the API
and the command line in English, notifications in the alley's language.

A code is `area.what` (e.g. `pile.id_taken`); parameters are plain JSON values and are
interpolated by name (`%(pile)s`). tests/test_outcomes.py fails when a code used in the
source has no entry here or no Chinese translation.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l

MESSAGES: dict[str, object] = {
    # filled by the areas; keep sorted by code
    "account.admin_only": _l("Only an admin can manage accounts"),
    "account.not_found": _l("No such account"),
    "account.password_short": _l("The password needs at least %(n)d characters"),
    "account.role": _l("Role: one of %(roles)s"),
    "account.self_demote": _l("You cannot take away your own admin role"),
    "account.self_disable": _l("You cannot disable your own account"),
    "alert.still_reported": _l("The pile still reports this fault: tick 'resolve anyway' and "
                               "give the reason"),
    "alley.not_found": _l("No alley %(alley)s"),
    "contact.phone": _l("That does not look like a phone number"),
    "contact.public_needs_phone": _l("To show a contact to residents, give a phone number"),
    "pile.not_found": _l("No pile %(pile)s"),
    "report.kind": _l("Choose what is wrong (%(kinds)s)"),
    "report.phone": _l("That does not look like a phone number"),
    "report.photo_invalid": _l("The photo could not be read as an image"),
    "report.photo_not_found": _l("No such photo"),
    "report.photo_too_big": _l("The photo is too big (at most %(mb)d MB)"),
    "report.port": _l("Port: 1 to %(n)d"),
}


def render(code: str, params: Mapping | None = None) -> str:
    """The code's text in the current locale (the page's, or the one forced by the
    caller); an unknown code is shown as itself, never an error."""
    template = MESSAGES.get(code)
    if template is None:
        return code
    text = gettext(template._args[0]) if hasattr(template, "_args") else str(template)
    try:
        return text % dict(params or {})
    except (KeyError, TypeError, ValueError):
        return text


def english(code: str, params: Mapping | None = None) -> str:
    """The code's text in English (API answers, command line, logs)."""
    try:
        with force_locale("en"):
            return render(code, params)
    except RuntimeError:  # outside an app context: the source text itself
        template = MESSAGES.get(code)
        if template is None:
            return code
        text = template._args[0] if hasattr(template, "_args") else str(template)
        try:
            return text % dict(params or {})
        except (KeyError, TypeError, ValueError):
            return text


__all__ = ["MESSAGES", "english", "render", "_l"]
