"""Label tables: the words for the codes the services store (fault codes, severities,
alert statuses, alert-history actions, command actions and outcomes, rejection
reasons, notification reasons, states and channels, billing audit actions), marked for Babel.

Shared by the staff pages (web/staff/wording.py) and the notifications
(services/alerts/notify.py), which render them in the page's or the alley's language.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

REJECTION_LABELS = {
    "bad_topic": _l("Unknown topic"), "unknown_kind": _l("Unknown message kind"),
    "sender_mismatch": _l("Sent by another pile"), "unknown_pile": _l("Pile not registered"),
    "retained": _l("Retained message (old news)"),
    "oversized": _l("Too large"), "malformed": _l("Not valid JSON"),
    "invalid": _l("Fields not as the protocol says"), "port_out_of_range": _l("No such port"),
    "replay": _l("Old sequence number (replay)"), "error": _l("Failed to process"),
}
NOTIFY_REASON_LABELS = {"new": _l("first page"), "resend": _l("reminder"),
                        "escalation": _l("escalation"), "cutoff": _l("cut-off not confirmed")}
NOTIFY_STATUS_LABELS = {"pending": _l("waiting to send"), "sent": _l("delivered"),
                        "failed": _l("gave up")}
CHANNEL_LABELS = {"webhook": _l("Group robot"), "email": _l("E-mail"), "sms": _l("SMS")}
# The automatic cut-off's state (Alert.cutoff, services/alerts/cutoff.py), as staff read it.
CUTOFF_LABELS = {"none": _l("no cut-off"), "pending": _l("Cutting power…"),
                 "confirmed": _l("Power cut (confirmed by the pile)"),
                 "unconfirmed": _l("Cut-off NOT confirmed")}
# The same states as residents are told them on the fire banner (never a hope: what the
# pile confirmed). `None` for "none": the banner then says only that staff know.
RESIDENT_CUTOFF_LABELS = {
    "none": None, "pending": _l("Cutting power…"),
    "confirmed": _l("Power cut (confirmed by the pile)"),
    "unconfirmed": _l("Power cut NOT confirmed: keep away, do not plug in or unplug; "
                      "staff have been informed."),
}

CODE_LABELS = {
    "smoke": _l("Smoke"), "over_temperature": _l("Over-temperature"),
    "over_current": _l("Over-current"), "overload": _l("Overload"),
    "ground_fault": _l("Ground fault"), "relay_stuck": _l("Relay stuck"),
    "offline": _l("Offline"), "over_voltage": _l("Over-voltage"),
    "under_voltage": _l("Under-voltage"), "meter_failure": _l("Meter failure"),
    "communication": _l("Communication fault"), "other": _l("Other fault"),
    "data_loss": _l("Possible data loss"),
    "report_burning": _l("Resident reports burning smell or smoke"),
    "report_no_power": _l("Resident reports no power"),
    "report_damaged": _l("Resident reports damaged socket"),
    "report_other": _l("Resident reports a problem"),
    "battery_risk_high": _l("Dangerous battery or charger (high risk)"),
    "battery_risk": _l("Battery or charger looks unusual (medium risk)"),
}
SEVERITY_LABELS = {"critical": _l("Critical"), "major": _l("Major"), "minor": _l("Minor"),
                   "warning": _l("Warning")}
STATUS_LABELS = {"active": _l("Unacknowledged"), "acknowledged": _l("Acknowledged"),
                 "cleared": _l("Cleared"), "open": _l("Open"), "all": _l("All")}
ACTION_LABELS = {"stop": _l("Stop charging"), "disable": _l("Disable"),
                 "enable": _l("Enable"), "reset": _l("Reset pile"),
                 "config": _l("Send configuration")}
PORT_STATUS_LABELS = {
    "available": _l("available"), "occupied": _l("occupied"), "charging": _l("charging"),
    "finishing": _l("finishing"), "faulted": _l("faulted"), "unavailable": _l("unavailable"),
}
EVENT_LABELS = {
    "raised": _l("raised"), "repeated": _l("reported again"), "acknowledged": _l("acknowledged"),
    "resolved": _l("resolved"), "resolved_override": _l("resolved anyway (pile still reporting)"),
    "cleared_by_device": _l("cleared by the pile"),
    "cleared_online": _l("pile back online"),
    "cleared_filled": _l("missing messages arrived late"), "flap": _l("flap (nobody paged)"),
    "cutoff_sent": _l("cut-off sent"), "command": _l("command sent"),
    "command_accepted": _l("command done"), "command_rejected": _l("command refused"),
    "command_timeout": _l("command unanswered"), "notified": _l("notified"),
    "renotified": _l("notified again"), "escalated": _l("escalated"),
    "stale_clear_ignored": _l("late clear ignored"), "stale_raise_ignored": _l("late report ignored"),
    "cutoff_confirmed": _l("cut-off confirmed by the pile"),
    "cutoff_unconfirmed": _l("cut-off not confirmed in time: escalated"),
    "cutoff_resent": _l("cut-off sent again"), "cutoff_retry": _l("cut-off tried again by staff"),
}
COMMAND_STATUS_LABELS = {"pending": _l("waiting to send"), "sent": _l("sent, waiting for the pile"),
                         "accepted": _l("done"), "rejected": _l("refused by the pile"),
                         "timeout": _l("failed: no answer")}
# What we add to a command's outcome beyond its status (the pile's own words follow).
COMMAND_OUTCOME_LABELS = {"no_ack": None, "unsent": _l("never sent: broker away"),
                          "late": _l("answered late")}
# The subject line of a notification that is not the first page.
NOTIFY_SUBJECT_PREFIXES = {"new": "", "resend": _l("[Unacknowledged · re-sent]"),
                           "escalation": _l("[Escalated]"),
                           "cutoff": _l("[Cut-off NOT confirmed]")}

# The billing audit trail (MoneyAudit.action, with its JSON data as the parameters).
MONEY_AUDIT_LABELS = {
    "account.created": _l("Account %(account)s created"),
    "adjustment.approved": _l("Adjustment %(adjustment)s approved"),
    "adjustment.rejected": _l("Adjustment %(adjustment)s rejected"),
    "grid.entered": _l("Grid bill for %(month)s entered"),
    "guard.stop": _l("Session %(session)s stopped: %(reason)s"),
    "month.published": _l("Month %(month)s published"),
    "money.refund": _l("Refund recorded"),
    "money.reversal": _l("A top-up or refund was reversed"),
    "money.topup": _l("Top-up recorded"),
    "reminder.channels": _l("Reminder channels of account %(account)s set"),
    "reminder.settings": _l("Reminder thresholds set"),
    "review.assigned": _l("Session assigned to an account"),
    "review.waived": _l("Session waived"),
    "tariff.created": _l("Tariff %(tariff)s will take effect at %(effective_from)s"),
}

# A charging session's status (ChargingSession.status), on the staff billing pages.
SESSION_STATUS_LABELS = {"active": _l("charging"), "stopped": _l("ended"),
                         "timeout": _l("closed after silence"),
                         "orphan": _l("incomplete (start not received)")}

# Why a charging session ended (services/charging/endings.py ENDINGS): port tiles, pile pages and
# receipts. Only `full` says the battery is full.
ENDING_LABELS = {
    "full": _l("Full"), "unplugged": _l("Unplugged"), "user": _l("Stopped by the resident"),
    "staff": _l("Stopped by staff"), "fault": _l("Power cut for a fault"),
    "power_loss": _l("Power loss"), "timeout": _l("Timed out"),
    "remote": _l("Stopped remotely"), "balance": _l("Balance too low"),
    "unknown_card": _l("Card not registered"), "monthly_hours": _l("Monthly hours used up"),
    "monthly_busy": _l("Monthly card in use on another port"),
    "assigned": _l("Stopped by the system; assigned to an account by staff"),
    "overload": _l("Stopped: over the port's power limit"),
    "too_long": _l("Stopped: longest session reached"),
    "risk": _l("Stopped: battery or charger looks dangerous"),
}

# The risk grade of a session and its reasons (constants.RiskGrade, RiskReason).
RISK_LABELS = {"low": _l("Low risk"), "mid": _l("Medium risk"), "high": _l("High risk")}
RISK_REASON_LABELS = {
    "over_power": _l("Power too high"), "power_fluctuation": _l("Power swings"),
    "no_taper": _l("Does not taper when full"), "temp_rise": _l("Port heats up"),
    "too_long": _l("Charging too long"),
}
# A pile's configuration, desired against reported (constants.ConfigState).
CONFIG_STATE_LABELS = {"none": _l("No remote configuration (v1 pile)"),
                       "pending": _l("Configuration not applied"),
                       "applied": _l("Configuration applied"),
                       "mismatch": _l("Configuration not applied")}
CONFIG_KEY_LABELS = {
    "max_power_w": _l("Port power limit (W)"), "overload_hold_s": _l("Overload hold (s)"),
    "full_stop_power_w": _l("Full-stop power (W)"), "full_stop_hold_s": _l("Full-stop hold (s)"),
    "max_session_s": _l("Longest session (s)"), "offline_policy": _l("Offline policy"),
    "offline_max_minutes": _l("Longest offline session (min)"),
}
