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
    "account.card": _l("Card %(card)s: 1 to 64 letters, digits or . _ : -"),
    "account.card_taken": _l("Card %(card)s is already held by another account of this alley"),
    "account.cards": _l("Give one or more different cards"),
    "account.created": _l("Account %(account)s created"),
    "account.kind": _l("Kind: one of %(kinds)s"),
    "account.monthly": _l("The monthly card's period or hours are not valid"),
    "account.not_found": _l("No such account"),
    "account.phone": _l("Phone: digits only"),
    "adjustment.approved": _l("Adjustment %(adjustment)s approved"),
    "adjustment.decided": _l("This adjustment was already decided"),
    "adjustment.not_charged": _l("The session has not been charged yet: resolve its review first"),
    "adjustment.not_found": _l("No such adjustment"),
    "adjustment.rejected": _l("Adjustment %(adjustment)s rejected"),
    "guard.stop": _l("Session %(session)s stopped: %(reason)s"),
    "ledger.unbalanced": _l("Posting %(key)s does not balance"),
    "money.amount": _l("Amount: 1 to %(max)s fen"),
    "money.duplicate": _l("This payment was already recorded"),
    "money.method": _l("Method: one of %(methods)s"),
    "money.receipt": _l("Receipt number: up to 64 characters"),
    "money.not_found": _l("No such top-up or refund"),
    "money.refund": _l("Refund recorded"),
    "money.refund_over_balance": _l("A refund cannot exceed the balance (%(balance)s fen)"),
    "money.reversal": _l("A top-up or refund was reversed"),
    "money.reversed": _l("This was already reversed"),
    "money.topup": _l("Top-up recorded"),
    "review.account": _l("Choose an account of this alley"),
    "review.assigned": _l("Session assigned to an account"),
    "review.decided": _l("This review item was already resolved"),
    "review.not_found": _l("No such review item"),
    "review.reason_required": _l("Give a reason"),
    "review.waived": _l("Session waived"),
    "tariff.amount": _l("Prices: whole fen from 0 to 100000"),
    "tariff.created": _l("Tariff %(tariff)s will take effect at %(effective_from)s"),
    "tariff.effective_past": _l("A tariff takes effect now or later, never in the past"),
    "tariff.minutes": _l("Step, free and float minutes: 0 to 1440 (step at least 1)"),
    "tariff.overlap": _l("A tariff already takes effect at %(at)s"),
    "tariff.scheme": _l("Service fee scheme: one of %(schemes)s"),
    "tariff.tiers": _l("Power tiers: ascending watt limits, each with a fee per hour"),
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
