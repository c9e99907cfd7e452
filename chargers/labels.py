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
    "stale": _l("Older than the duplicate memory (stale)"),
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
    "over_budget": _l("Alley's power supply over its limit"),
}
SEVERITY_LABELS = {"critical": _l("Critical"), "major": _l("Major"), "minor": _l("Minor"),
                   "warning": _l("Warning")}
STATUS_LABELS = {"active": _l("Unacknowledged"), "acknowledged": _l("Acknowledged"),
                 "cleared": _l("Cleared"), "open": _l("Open"), "all": _l("All")}
ACTION_LABELS = {"stop": _l("Stop charging"), "disable": _l("Disable"),
                 "enable": _l("Enable"), "reset": _l("Reset pile"),
                 "config": _l("Send configuration"),
                 "authorize": _l("Answer to a card at the pile"),
                 "start": _l("Start a queued charge")}
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
    "withdrawn": _l("withdrawn by the system"),
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
    "pay.limits": _l("Online top-up limits set: %(min)s to %(max)s"),
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
    "over_budget": _l("Stopped: the alley's power supply was over its limit"),
}

# What came of it (services/charging/endings.stop_asked): the stop command's state, and
# an ack alone is not a stop.
STOP_ASKED_LABELS = {
    **{k: v for k, v in COMMAND_STATUS_LABELS.items() if k != "accepted"},
    "accepted": _l("accepted by the pile, still charging"),
    "ended": _l("the charge has ended"),
    "unknown": _l("no stop command found"),
}

# The messages a resident gets (settings.RESIDENT_KINDS; Reminder.kind), on the account
# pages. "cutoff" is the SMS to the residents near a pile whose power was cut.
REMINDER_LABELS = {
    "low_balance": _l("Low balance"), "negative": _l("Balance below zero"),
    "monthly_end": _l("Monthly card ending"), "statement": _l("Statement ready"),
    "published": _l("Month published"), "session_start": _l("Charging started"),
    "full": _l("Fully charged"), "stopped": _l("Charging stopped"),
    "failed": _l("Charging failed"), "queue_start": _l("Your turn in the queue"),
    "overstay": _l("Please move your bike"),
    "battery_risk": _l("Battery or charger may be faulty"),
    "budget_stop": _l("Charging stopped: the alley's supply was over its limit"),
    "cutoff": _l("Power cut at a pile for a fault"),
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
# The answer to a card at a pile (constants.AuthorizeResult, AuthorizeReason), the
# queue's states (constants.QueueState) and why a queued resident left the queue.
AUTHORIZE_RESULT_LABELS = {"accepted": _l("Accepted"), "queued": _l("Queued"),
                           "rejected": _l("Refused")}
AUTHORIZE_REASON_LABELS = {
    "unknown_card": _l("Card not registered"), "no_balance": _l("Balance too low"),
    "disabled": _l("Port or pile disabled"), "fire": _l("Fire alarm on the pile"),
    "not_allowed": _l("Card already charging elsewhere"),
}
QUEUE_STATE_LABELS = {"waiting": _l("waiting"), "started": _l("start sent"),
                      "charging": _l("charging"), "dropped": _l("left the queue")}
QUEUE_DROP_LABELS = {"left": _l("the bike left"), "expired": _l("waited too long"),
                     "not_occupied": _l("the bike left"), "no_balance": _l("balance too low"),
                     "unknown_card": _l("card not registered"),
                     "not_allowed": _l("card already charging elsewhere")}
# What a pile does when `authorize` gets no answer (device protocol `offline_policy`).
OFFLINE_POLICY_LABELS = {"accept": _l("let the charge start"), "reject": _l("refuse the charge")}
CONFIG_KEY_LABELS = {
    "max_power_w": _l("Port power limit"), "overload_hold_s": _l("Overload hold"),
    "full_stop_power_w": _l("Full-stop power"), "full_stop_hold_s": _l("Full-stop hold"),
    "max_session_s": _l("Longest session"), "offline_policy": _l("Offline policy"),
    "offline_max_minutes": _l("Longest offline session"),
}
# The unit each config key is read and typed in on the staff pages, and how many of the
# protocol's unit (W, seconds, minutes) one of it is: 充满自停 hold in minutes, the
# longest session in hours (the protocol carries seconds).
CONFIG_KEY_UNITS = {
    "max_power_w": ("W", 1), "overload_hold_s": (_l("s"), 1),
    "full_stop_power_w": ("W", 1), "full_stop_hold_s": (_l("min"), 60),
    "max_session_s": (_l("h"), 3600), "offline_max_minutes": (_l("min"), 1),
}

# Billing codes (account kinds, ledger account kinds, posting kinds, review reasons,
# billing states, service schemes, guard reasons, payment methods as "method:<code>"),
# shown by web/money.billing_word and in the exports' label columns.
BILLING_LABELS = {
    "prepaid": _l("Prepaid"), "monthly": _l("Monthly card"),
    "exempt": _l("Exempt (the community pays)"),
    "resident": _l("Resident balance"), "electricity": _l("Electricity takings"),
    "service": _l("Service fee takings"), "cash": _l("Cash and payments received"),
    "covered": _l("Covered (monthly card or the community)"), "waived": _l("Waived"),
    # The covered account split by who bears it (the session's account kind).
    "covered:monthly": _l("Monthly card"), "covered:exempt": _l("Paid by the community"),
    "charge": _l("Charge"), "topup": _l("Top-up"), "refund": _l("Refund"),
    "adjustment": _l("Adjustment"), "reversal": _l("Reversal"),
    "writeoff": _l("Debt written off"), "written_off": _l("Debts written off"),
    "occupancy": _l("Occupancy fee takings"),
    "card_sale": _l("Monthly card sold"), "card_sales": _l("Monthly cards sold"),
    "no_card": _l("No card"), "unknown_card": _l("Unknown card"),
    "other_alley": _l("Card of another alley"),
    "charged": _l("Charged"), "review": _l("In review"),
    "tier_hour": _l("By power tier, per hour"), "kwh": _l("Per kWh"),
    "flat_hour": _l("Flat, per hour"), "none": _l("None"),
    "balance": _l("balance used up"), "monthly_hours": _l("monthly hours used up"),
    "monthly_busy": _l("another session on the monthly card"),
    "method:cash": _l("Cash"), "method:wechat": _l("WeChat Pay"),
    "method:alipay": _l("Alipay"), "method:bank": _l("Bank transfer"),
    "method:other": _l("Other"),
    "pay_wechat": _l("Held at WeChat Pay"), "pay_alipay": _l("Held at Alipay"),
    "pay_fees": _l("Payment fees (expense)"), "fee": _l("Payment fee"),
}
# Why the system asked a pile to stop a session (ChargingSession.guard_reason: the
# balance guard's REASONS, as billing and the queue say them, and constants.LimitStop),
# said as a reason, not an ending.
GUARD_REASON_LABELS = {
    **{k: BILLING_LABELS[k] for k in ("balance", "monthly_hours", "monthly_busy")},
    "unknown_card": QUEUE_DROP_LABELS["unknown_card"],
    "overload": _l("over the port's power limit"), "too_long": _l("longest session reached"),
    "full": _l("full (under the auto-stop power)"),
    "risk": _l("battery or charger looks dangerous"),
    "over_budget": _l("the alley's supply over its limit"),
}
# The alley's own ledger accounts whose balance is a debit (money received, amounts the
# community covered or waived, money held at the payment services, their fees): pages
# show them with the sign of what happened.
DEBIT_ACCOUNT_KINDS = frozenset({"cash", "covered", "waived", "written_off", "pay_wechat",
                                 "pay_alipay", "pay_fees"})

# The worker's jobs (chargers/jobs, by id): what each does, for the jobs page.
JOB_LABELS = {
    "commands-dispatch": _l("Send the commands staff or the automatic cut-off asked for to the piles"),
    "commands-timeout": _l("Mark commands the pile did not answer in time as failed"),
    "cutoff-track": _l("Confirm cut-offs the piles carried out, send again what they did not, "
                       "escalate late ones"),
    "alerts-offline": _l("Raise an alert for piles offline past the grace period"),
    "alerts-notify": _l("Page the contacts of alerts still open after the debounce"),
    "alerts-escalate": _l("Page again about unacknowledged critical alerts, then the level-2 "
                          "contacts"),
    "notify-deliver": _l("Deliver waiting notifications (group robots, e-mail, SMS)"),
    "settle": _l("Price finished sessions and post each to the ledger once"),
    "balance-guard": _l("Stop sessions past their balance or monthly hours, or on unknown "
                        "cards after a grace"),
    "offline-sweep": _l("Mark piles offline after 3 missed heartbeats"),
    "stale-sessions": _l("Close charging sessions the pile has been silent about too long"),
    "prune-ledger": _l("Forget the ids of old device messages (kept against duplicates)"),
    "seq-gaps": _l("Raise a possible data loss alert for device messages that never arrived"),
    "inspections-due": _l("Remind contacts of inspections due or overdue (from 08:00 alley "
                          "time)"),
    "fault-inspections": _l("Open one unscheduled inspection for piles with repeated faults or "
                            "high temperatures"),
    "overstay": _l("Notice finished ports still plugged in and remind the card holder"),
    "retention": _l("Delete old meter readings, delivered notifications, rejected messages "
                    "and job history"),
    "reminders": _l("Remind residents once per condition; notice published months"),
    "statements-monthly": _l("Close every past month not yet closed: statements and each "
                             "alley's month account"),
    "config-push": _l("Send each pile with the config feature its desired settings until it "
                      "reports them"),
    "risk-review": _l("Stop sessions past the longest time; learn each card's usual charge"),
    "payments-expire": _l("Ask the payment service about top-up orders unpaid after 5 minutes: "
                          "post the paid ones, close the others"),
    "payments-refunds": _l("Ask the payment service about refunds not confirmed yet"),
    "payments-reconcile": _l("Download the payment services' bills of the previous day and "
                             "match them with orders and the ledger"),
    "budget-queue": _l("Start the first queued residents when the alley's power budget has "
                       "room; drop those whose bike left"),
    "budget-check": _l("Sample each alley's charging load; stop the newest sessions when it "
                       "stays over the feeder limit"),
}
# What a job run did (jobs.Summary.code), with its counts as the parameters.
JOB_RESULT_LABELS = {
    "commands_sent": _l("%(n)d command(s) sent"),
    "commands_timed_out": _l("%(n)d command(s) unanswered"),
    "cutoffs": _l("%(confirmed)d cut-off(s) confirmed, %(escalated)d not confirmed in time, "
                  "%(resent)d sent again"),
    "offline_alerts": _l("%(n)d offline alert(s) raised"),
    "alerts_paged": _l("%(n)d alert(s) paged"),
    "alerts_repaged": _l("%(resent)d paged again, %(escalated)d escalated"),
    "delivered": _l("%(sent)d delivered, %(failed)d failed"),
    "piles_offline": _l("%(n)d pile(s) marked offline"),
    "sessions_timed_out": _l("%(n)d session(s) closed after silence"),
    "ledger_pruned": _l("%(n)d old message id(s) forgotten"),
    "seq_gaps_lost": _l("%(n)d gap(s) in device messages: possible data loss"),
    "inspection_orders": _l("%(n)d inspection work order(s) opened"),
    "overstays": _l("%(opened)d overstay(s) noticed, %(ended)d ended, %(nudged)d card "
                    "holder(s) reminded"),
    "months_closed": _l("%(closed)d month(s) closed, %(waiting)d waiting for settlement"),
    "payment_orders": _l("%(paid)d order(s) found paid, %(closed)d closed unpaid, "
                         "%(failed)d not reached"),
    "payment_refunds": _l("%(succeeded)d refund(s) confirmed, %(failed)d failed, "
                          "%(processing)d still under way"),
    "payments_reconciled": _l("%(lines)d bill line(s) matched, %(mismatches)d finding(s)"),
    "queue_started": _l("%(started)d queued session(s) started, %(dropped)d dropped"),
    "over_budget_stops": _l("%(n)d session(s) stopped over the feeder limit"),
    "config_resent": _l("configuration sent again to %(n)d pile(s)"),
    "risk_reviewed": _l("%(stopped)d session(s) stopped past the longest time, %(learned)d "
                        "card(s)' usual charge learned"),
    # These list their counts by kind (JOB_COUNT_LABELS) after the sentence.
    "settled": _l("Sessions settled:"),
    "stop_asked": _l("Stop asked:"),
    "inspection_reminders": _l("Inspection reminders:"),
    "deleted": _l("Deleted:"),
    "reminders": _l("Reminders:"),
}
JOB_RESULT_LISTS = frozenset({"settled", "stop_asked", "inspection_reminders", "deleted",
                              "reminders"})
# The kinds a job counts (settlement outcomes, guard reasons, reminder stages and kinds,
# what the retention job deletes); billing codes are worded by BILLING_LABELS.
JOB_COUNT_LABELS = {
    "free": _l("free"), "due": _l("due"), "overdue": _l("overdue"),
    "escalation": _l("escalated"), "messages": _l("messages queued"),
    "meter_samples": _l("meter readings"), "notifications": _l("notifications"),
    "feeder_samples": _l("feeder load samples"),
    "rejections": _l("rejected messages"), "job_runs": _l("job runs"),
    "low_balance": _l("low balance"), "negative": _l("balance below zero"),
    "monthly_end": _l("monthly card ending"), "statement": _l("statement ready"),
    "published": _l("month published"), "overstay": _l("overstay"),
}
# A schedule's unit (APScheduler interval arguments), for "every 10 seconds".
SCHEDULE_UNIT_LABELS = {"seconds": _l("every %(n)d s"), "minutes": _l("every %(n)d min"),
                        "hours": _l("every %(n)d h"), "days": _l("every %(n)d day(s)"),
                        "weeks": _l("every %(n)d week(s)")}

# The sample sessions a draft tariff is previewed on (services/tariffs.PREVIEW_SAMPLES)
# and the pricing rules a price applied (services/pricing.Priced.rules).
PREVIEW_SAMPLE_LABELS = {
    "short": _l("Unplugged after 4 min"), "1h_150w": _l("1 h at 150 W"),
    "3h_300w": _l("3 h at 300 W"), "8h_400w": _l("8 h at 400 W"),
    "10h_full_after_5": _l("10 h at 400 W, full after 5 h"),
}
PRICING_RULE_LABELS = {
    "free": _l("free minutes"), "minimum": _l("minimum charge"), "cap": _l("cap per session"),
    "float_after_full": _l("not charged long after full"),
    "failed": _l("charging failed: nothing charged"),
}

# Online payments (services/payments): channels, order and refund states, what became
# of a provider's notification, reconciliation findings.
PAY_CHANNEL_LABELS = {"wechat_jsapi": _l("WeChat Pay"), "wechat_h5": _l("WeChat Pay (H5)"),
                      "wechat_native": _l("WeChat Pay (QR code)"), "alipay_wap": _l("Alipay")}
PAY_PROVIDER_LABELS = {"wechat": _l("WeChat Pay"), "alipay": _l("Alipay")}
ORDER_STATE_LABELS = {"created": _l("waiting for payment"), "paid": _l("paid"),
                      "closed": _l("closed unpaid"), "refunding": _l("refund under way"),
                      "refunded": _l("refunded")}
REFUND_STATE_LABELS = {"processing": _l("asked, not confirmed yet"),
                       "succeeded": _l("confirmed by the provider"),
                       "failed": _l("failed: the amount is back on the balance")}
NOTICE_OUTCOME_LABELS = {
    "posted": _l("verified, top-up posted"), "replayed": _l("repeated: nothing changed"),
    "refund_confirmed": _l("verified, refund result applied"),
    "bad_signature": _l("rejected: signature does not verify"),
    "expired": _l("rejected: too old"), "other_merchant": _l("rejected: another merchant"),
    "unknown_order": _l("rejected: no such order"),
    "amount_mismatch": _l("rejected: amount differs from the order"),
    "not_success": _l("ignored: not a success"), "malformed": _l("rejected: malformed")}
MISMATCH_LABELS = {"missing_here": _l("paid there, not here"),
                   "missing_there": _l("here, not there"),
                   "amount": _l("amounts differ"), "fee": _l("fee differs from the contract rate")}
MISMATCH_STATUS_LABELS = {"open": _l("open"), "resolved": _l("resolved")}
