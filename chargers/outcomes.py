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
    # keep sorted by code
    "account.admin_only": _l("Only an admin can manage accounts"),
    "account.card": _l("Card %(card)s: 1 to 64 letters, digits or . _ : -"),
    "account.card_taken": _l("Card %(card)s is already held by another account of this alley"),
    "account.cards": _l("Give one or more different cards"),
    "account.kind": _l("Kind: one of %(kinds)s"),
    "account.monthly": _l("The monthly card's period or hours are not valid"),
    "account.not_found": _l("No such account"),
    "account.password_short": _l("The password needs at least %(n)d characters"),
    "account.phone": _l("Phone: digits only"),
    "account.resident_not_found": _l("No such resident account"),
    "account.role": _l("Role: one of %(roles)s"),
    "account.self_demote": _l("You cannot take away your own admin role"),
    "account.self_disable": _l("You cannot disable your own account"),
    "adjustment.decided": _l("This adjustment was already decided"),
    "adjustment.not_charged": _l("The session has not been charged yet: resolve its review first"),
    "adjustment.not_found": _l("No such adjustment"),
    "alert.already_cleared": _l("The alert is already cleared."),
    "alert.not_found": _l("No such alert."),
    "alert.note_required": _l("Say what was found or done."),
    "alert.severity_filter": _l("Severity: one of %(choices)s."),
    "alert.status_filter": _l("Status: one of active, acknowledged, cleared."),
    "alert.still_reported": _l("The pile still reports this fault: tick 'resolve anyway' and "
                               "give the reason"),
    "cutoff.not_retryable": _l("This cut-off is confirmed or was never asked: nothing to try again."),
    "alley.exists": _l("The alley %(slug)s already exists."),
    "alley.name_required": _l("Enter a name."),
    "alley.not_found": _l("No such alley."),
    "alley.slug_and_name_required": _l("Enter a slug and a name."),
    "alley.slug_format": _l("The slug: lower-case letters, digits and dashes, up to 64."),
    "alley.tariff_range": _l("The tariff: ¥0 to %(max)s per kWh."),
    "alley.timezone_unknown": _l("Unknown time zone %(zone)s (e.g. Asia/Shanghai)."),
    "alley.unknown": _l("No such alley: %(slug)s."),
    "api.page_integers": _l("limit and offset must be integers."),
    "api.unknown_parameter": _l("Unknown query parameter: %(name)s (this call takes "
                                "%(allowed)s)."),
    "auth.token_missing": _l("A Bearer token is required."),
    "auth.token_invalid": _l("The Bearer token is wrong or has been revoked."),
    "api.page_range": _l("limit: 1 to %(max)d; offset: 0 to %(max_offset)d."),
    "command.action_unknown": _l("The action: one of %(choices)s."),
    "config.invalid": _l("Device setting %(key)s: %(detail)s."),
    "config.full_over_limit": _l("%(where)s: the full-stop power (%(full)s W) must be below "
                                 "the port power limit (%(limit)s W)."),
    "config.hold_over_session": _l("%(where)s: the full-stop hold (%(hold)s min) must be "
                                   "shorter than the longest session (%(longest)s h)."),
    "budget.limit_range": _l("%(key)s: a whole number of watts from 0 to 10000000, or empty."),
    "budget.margin_too_big": _l("The safety margin must be below the feeder limit."),
    "risk.card_invalid": _l("Enter the card (up to 64 characters)."),
    "risk.card_unknown": _l("No such card in this alley: no account holds it and it has not charged here."),
    "risk.note_too_long": _l("The note: at most 1000 characters."),
    "command.late": _l("late ack"),
    "command.no_ack": _l("no ack from the pile"),
    "command.not_found": _l("No such command."),
    "command.port_range": _l("There is no port %(port)s on this pile: its ports are 1 to %(n)d."),
    "command.reset_whole_pile": _l("A reset is for the whole pile."),
    "command.stop_needs_port": _l("Stopping a charge needs a port."),
    "command.unsent": _l("never published"),
    "contact.channel_unknown": _l("The channel: one of %(choices)s."),
    "contact.email_target": _l("Enter an e-mail address."),
    "contact.level_range": _l("The level: 1 (first) or 2 (escalation)."),
    "contact.name_length": _l("The name: 1 to 64 characters."),
    "contact.not_found": _l("No such contact."),
    "contact.phone": _l("That does not look like a phone number"),
    "contact.public_needs_phone": _l("To show a contact to residents, give a phone number"),
    "contact.target_length": _l("The address is too long (at most %(max)d characters)."),
    "contact.webhook_format_unknown": _l("The robot format: one of %(choices)s."),
    "contact.webhook_target": _l("A group robot needs its webhook address (http:// or https://)."),
    "ledger.duplicate_key": _l("A posting key was used twice: %(key)s"),
    "ledger.unbalanced": _l("Posting %(key)s does not balance"),
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
    "grid.kwh": _l("Grid energy: a kWh figure, or both meter readings (end not below start)"),
    "grid.month": _l("Month: YYYY-MM"),
    "grid.published": _l("The month %(month)s is published; its grid bill is locked."),
    "month.not_found": _l("No closed month %(month)s."),
    "reminder.days": _l("Days before a monthly card ends: 0 to 60"),
    "reminder.email": _l("E-mail: an address like name@example.com"),
    "reminder.language": _l("Language: one of %(languages)s"),
    "reminder.no_phone": _l("SMS needs the account's phone number."),
    "reminder.no_wechat": _l("WeChat messages need the account linked to WeChat first: "
                             "open this page in WeChat and sign in."),
    "reminder.threshold": _l("Low-balance threshold: ¥0 to ¥10,000"),
    "statement.not_found": _l("No such statement."),
    "month.published": _l("The month %(month)s is already published."),
    "month.not_published": _l("The month %(month)s is not published yet: change the grid bill instead."),
    "month.correction_reason": _l("Say why the notice is corrected."),
    "month.correction_same": _l("The correction changes nothing of %(month)s."),
    "money.amount": _l("Amount: ¥0.01 to %(max)s"),
    "money.duplicate": _l("This payment was already recorded"),
    "idempotency.replay": _l("This request was already made"),
    "idempotency.other_request": _l("This request key was already used for another request"),
    "idempotency.pending": _l("This request is still being processed: try again shortly"),
    "money.method": _l("Method: one of %(methods)s"),
    "money.not_found": _l("No such top-up or refund"),
    "money.receipt": _l("Receipt number: up to 64 characters"),
    "money.refund_over_balance": _l("A refund cannot exceed the balance (%(balance)s)"),
    "money.reversed": _l("This was already reversed"),
    "money.online_not_reversible": _l("Money paid or refunded online is not reversed here: "
                                      "refund an online top-up to its channel on the "
                                      "Online payments page"),
    "money.writeoff_over_debt": _l("A write-off is ¥0.01 up to the debt (%(debt)s), with a reason"),
    "pay.amount": _l("Top-up: %(min)s to %(max)s"),
    "pay.limits": _l("Top-up limits: a minimum of at least %(floor)s and a maximum of at most "
                     "%(ceiling)s, the minimum not above the maximum"),
    "pay.channel": _l("This way of paying is not available here"),
    "pay.link_expired": _l("This top-up link has expired: open My account again"),
    "pay.oauth": _l("WeChat did not tell us who you are: open the page again from WeChat"),
    "pay.openid": _l("Paying inside WeChat needs your WeChat sign-in first"),
    "pay.order_not_found": _l("No such order"),
    "pay.provider_down": _l("The payment service did not answer: nothing was charged, try again"),
    "pay.refund_amount": _l("A refund is ¥0.01 up to what is left of the order "
                            "(%(left)s) and the balance (%(balance)s)"),
    "pay.refund_not_paid": _l("Only a paid online order can be refunded to its channel"),
    "pay.mismatch_not_found": _l("No such reconciliation finding"),
    "mqtt.backend_client_id_format": _l("Backend client ids: without ':', '+', '#' or '/'."),
    "mqtt.backend_password_required": _l("The backend password is required."),
    "mqtt.backend_username_format": _l("The backend username is required, without ':', '+', '#' or '/'."),
    "mqtt.pile_id_is_backend": _l("The pile id %(pile)s is one of the backend's logins; choose another."),
    "photo.none": _l("No such photo"),
    "photo.not_image": _l("That file is not a photo: only images (JPEG, PNG, …) can be attached"),
    "photo.too_large": _l("That photo is too large: at most %(mb)s MB"),
    "photo.too_many_pixels": _l("Those photos are too large: at most %(mp)s megapixels "
                                "each, and twice that together"),
    "pile.alley_required": _l("Choose an alley."),
    "pile.exists": _l("The pile %(id)s already exists."),
    "pile.id_format": _l("The serial: 1 to 64 letters, digits, '_' or '-'."),
    "pile.label_empty": _l("The label must not be empty."),
    "pile.not_found": _l("No such pile."),
    "session.not_found": _l("No such session."),
    "pile.ports_range": _l("Ports: 1 to %(n)d."),
    "report.kind": _l("Choose what is wrong (%(kinds)s)"),
    "report.phone": _l("That does not look like a phone number"),
    "report.details": _l("Please keep it to %(n)d characters"),
    "report.photo_invalid": _l("The photo could not be read as an image"),
    "report.photo_not_found": _l("No such photo"),
    "report.photo_too_big": _l("The photo is too big (at most %(mb)d MB)"),
    "report.port": _l("There is no port %(port)s on this pile: its ports are 1 to %(n)d."),
    "review.account": _l("Choose an account of this alley"),
    "review.decided": _l("This review item was already resolved"),
    "review.not_found": _l("No such review item"),
    "review.reason_required": _l("Give a reason"),
    "tariff.windows": _l("Time-of-use windows: \"HH:MM\" to \"HH:MM\" with a price each, "
                         "covering every minute of the day once"),
    "tariff.amount": _l("Prices: ¥0 to ¥1,000, to ¥0.01"),
    "tariff.effective_past": _l("A tariff takes effect now or later, never in the past"),
    "tariff.minutes": _l("Step, free and float minutes: 0 to 1440 (step at least 1)"),
    "tariff.overlap": _l("A tariff already takes effect at %(at)s"),
    "tariff.scheme": _l("Service fee scheme: one of %(schemes)s"),
    "tariff.tiers": _l("Power tiers: ascending watt limits, each with a fee per hour"),
    "token.not_found": _l("No such token."),
    "user.admins_only": _l("Only admins may do this."),
    "user.exists": _l("The user %(name)s already exists."),
    "user.name_required": _l("Enter a name."),
    "user.not_found": _l("No such user %(name)s."),
    "user.password_short": _l("The password: at least %(n)d characters."),
    "user.role_unknown": _l("The role: one of %(choices)s."),
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
