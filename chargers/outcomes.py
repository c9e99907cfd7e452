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
    "maintenance.bad_checklist": _l("Checklist line %(line)s: 1 to 200 characters"),
    "maintenance.bad_kind": _l("Kind: one of %(kinds)s"),
    "maintenance.bad_name": _l("Name: 1 to 120 characters"),
    "maintenance.bad_period": _l("Period: every 1 to 366 days, weeks or months"),
    "maintenance.bad_pile": _l("Pile %(pile)s is not in this alley"),
    "maintenance.bad_port": _l("Port %(port)s: this pile has ports 1 to %(ports)s"),
    "maintenance.bad_result": _l("%(item)s: mark pass, fail or not applicable"),
    "maintenance.empty_checklist": _l("A checklist needs at least one item"),
    "maintenance.missing_item": _l("%(item)s: not marked"),
    "maintenance.no_order": _l("No such work order"),
    "maintenance.no_plan": _l("No such inspection plan"),
    "maintenance.no_record": _l("No such inspection record"),
    "maintenance.note_required": _l("Say what was found or done"),
    "maintenance.transition": _l("A work order that is %(frm)s cannot become %(to)s"),
    "photo.none": _l("No such photo"),
    "photo.not_image": _l("That file is not a photo: only images (JPEG, PNG, …) can be attached"),
    "photo.too_large": _l("That photo is too large: at most %(mb)s MB"),
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
