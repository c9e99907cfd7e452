"""Every code list of the product, once, as StrEnums (CTFd keeps its in `constants/`).

A member is a `str`: it compares equal to the code stored in the database and sent on
the wire (`PortStatus.CHARGING == "charging"`), so code and data agree without
conversion. The device protocol's tuples (chargers/protocol/codes.py) are made from
these; words for people live in chargers/labels.py, keyed by the same codes.
"""

from __future__ import annotations

from enum import StrEnum


class PortStatus(StrEnum):
    """A port's status as the pile reports it (device protocol `status`)."""

    AVAILABLE = "available"
    OCCUPIED = "occupied"
    CHARGING = "charging"
    FINISHING = "finishing"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


class FaultCode(StrEnum):
    """The fault codes of the device protocol."""

    OVER_CURRENT = "over_current"
    OVERLOAD = "overload"
    OVER_TEMPERATURE = "over_temperature"
    SMOKE = "smoke"
    GROUND_FAULT = "ground_fault"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    METER_FAILURE = "meter_failure"
    RELAY_STUCK = "relay_stuck"
    COMMUNICATION = "communication"
    OTHER = "other"


# Fire risks: the backend treats them as critical and cuts power without waiting.
FIRE_CODES = (FaultCode.SMOKE, FaultCode.OVER_TEMPERATURE)


class StopReason(StrEnum):
    """Why the pile says a session stopped (device protocol `session` stop)."""

    FULL = "full"
    UNPLUGGED = "unplugged"
    USER = "user"
    REMOTE = "remote"
    FAULT = "fault"
    POWER_LOSS = "power_loss"
    TIMEOUT = "timeout"
    BALANCE = "balance"


class CommandAction(StrEnum):
    """What the backend asks a pile on its `cmd` topic."""

    STOP = "stop"
    ENABLE = "enable"
    DISABLE = "disable"
    RESET = "reset"
    CONFIG = "config"  # v1.1, only to piles with the `config` feature
    AUTHORIZE = "authorize"  # v1.1: the answer to a pile's `authorize` (not acked)
    START = "start"  # v1.1: begin a session queued under the power budget


class AckResult(StrEnum):
    """A pile's answer to a command."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class CommandStatus(StrEnum):
    """A command's life: pending (not yet published) → sent → accepted / rejected /
    timeout (no ack in COMMAND_TIMEOUT_S; a late ack still records what the pile did)."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"


class AlertStatus(StrEnum):
    """An alert's life: active (unacknowledged) → acknowledged → cleared."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


OPEN_ALERT = (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)


class Severity(StrEnum):
    """How urgent an alert is, most urgent first."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class CutoffState(StrEnum):
    """The automatic cut-off of an alert, as the pile confirmed it (services/alerts/cutoff.py)."""

    NONE = "none"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"


# The filters' word for "not closed yet": alerts active or acknowledged, work orders
# open or in progress.
OPEN_FILTER = "open"


class NotificationStatus(StrEnum):
    """A message in the outbox: pending → sent, or failed after NOTIFY_MAX_ATTEMPTS."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class RiskGrade(StrEnum):
    """How dangerous a charging session looks from its curve (services/safety/)."""

    LOW = "low"
    MID = "mid"
    HIGH = "high"


RISK_ORDER = {RiskGrade.LOW: 0, RiskGrade.MID: 1, RiskGrade.HIGH: 2}


class RiskReason(StrEnum):
    """Why a session was graded above low (API `risk_reasons`)."""

    OVER_POWER = "over_power"
    POWER_FLUCTUATION = "power_fluctuation"
    NO_TAPER = "no_taper"
    TEMP_RISE = "temp_rise"
    TOO_LONG = "too_long"


class LimitStop(StrEnum):
    """Why the backend itself asked a pile to stop a session (services/safety/limits.py),
    recorded as the session's guard_reason: the port limit held for two readings, the
    longest session, 充满自停 (power under the threshold for the hold time), or a high
    risk grade."""

    OVERLOAD = "overload"
    TOO_LONG = "too_long"
    FULL = "full"
    RISK = "risk"
    OVER_BUDGET = "over_budget"  # the alley's feeder stayed over its limit (services/budget)


class ConfigState(StrEnum):
    """A pile's configuration, desired against reported (services/devices/config.py):
    `none` (the pile has no `config` feature: nothing is sent), `pending` (sent, the pile
    has not reported that version yet), `applied` (reported = desired), `mismatch` (the
    pile reported the version with other settings)."""

    NONE = "none"
    PENDING = "pending"
    APPLIED = "applied"
    MISMATCH = "mismatch"


class OfflinePolicy(StrEnum):
    """What a pile does when `authorize` gets no answer (config key `offline_policy`)."""

    ACCEPT = "accept"
    REJECT = "reject"


class PayChannel(StrEnum):
    """How a resident pays online (services/payments): WeChat Pay v3 inside WeChat's
    browser (JSAPI, with the openid from the official account's OAuth), in another
    phone browser (H5) or by a QR code on a desktop (Native); Alipay mobile web pay."""

    WECHAT_JSAPI = "wechat_jsapi"
    WECHAT_H5 = "wechat_h5"
    WECHAT_NATIVE = "wechat_native"
    ALIPAY_WAP = "alipay_wap"


class PayProvider(StrEnum):
    """Who holds the money of an online payment (a channel's provider)."""

    WECHAT = "wechat"
    ALIPAY = "alipay"


class OrderState(StrEnum):
    """An online top-up order: `created` (sent to the provider, not paid yet), `paid`
    (the provider's verified notification or signed query said so; posted to the
    ledger once), `closed` (never paid: closed at the provider), `refunding` (a refund
    asked of the provider, not confirmed yet), `refunded` (the provider confirmed it;
    partly or wholly, see the refunds)."""

    CREATED = "created"
    PAID = "paid"
    CLOSED = "closed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


class RefundState(StrEnum):
    """A refund to the original channel: `processing` (the provider took it; the
    balance is already held back by its posting), `succeeded` (confirmed by the
    provider), `failed` (the provider gave up: the posting is reversed)."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class NoticeOutcome(StrEnum):
    """What became of a provider's notification (counted in /metrics): `posted`
    (verified, the top-up posted), `replayed` (verified, the order already paid:
    nothing changes), and the rejections, which change nothing: `bad_signature`
    (unverifiable or undecryptable), `expired` (signed too long ago), `other_merchant`
    (for another merchant or app), `unknown_order`, `amount_mismatch`, `not_success`
    (a state other than paid), `malformed`. A refund's result (WeChat REFUND.*,
    Alipay's notification of a refund): `refund_confirmed` (verified, the refund
    settled), `replayed` when it already was; `unknown_order` names no refund of ours."""

    POSTED = "posted"
    REFUND_CONFIRMED = "refund_confirmed"
    REPLAYED = "replayed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    OTHER_MERCHANT = "other_merchant"
    UNKNOWN_ORDER = "unknown_order"
    AMOUNT_MISMATCH = "amount_mismatch"
    NOT_SUCCESS = "not_success"
    MALFORMED = "malformed"


class MismatchKind(StrEnum):
    """A reconciliation finding (services/payments/reconcile): paid at the provider but
    not here, here but not at the provider, an amount or a fee that differs."""

    MISSING_HERE = "missing_here"
    MISSING_THERE = "missing_there"
    AMOUNT = "amount"
    FEE = "fee"


class MismatchStatus(StrEnum):
    """A reconciliation finding on the staff review list: `open`, then `resolved` by
    a person with a note."""

    OPEN = "open"
    RESOLVED = "resolved"
class AuthorizeResult(StrEnum):
    """The backend's answer to a pile's `authorize` (device protocol v1.1)."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    REJECTED = "rejected"


class AuthorizeReason(StrEnum):
    """Why an `authorize` was rejected (device protocol v1.1)."""

    UNKNOWN_CARD = "unknown_card"
    NO_BALANCE = "no_balance"
    DISABLED = "disabled"
    FIRE = "fire"
    NOT_ALLOWED = "not_allowed"


class QueueState(StrEnum):
    """A queued authorize under the alley's power budget (services/budget/queue.py):
    waiting → started (a `start` went out) → charging (its session began), or dropped
    (the bike left, the pile refused the start, or the wait outlived the queue)."""

    WAITING = "waiting"
    STARTED = "started"
    CHARGING = "charging"
    DROPPED = "dropped"


class SessionStatus(StrEnum):
    """A charging session (services/charging/sessions.py): `active` (started, not
    stopped), `stopped` (the pile said stop), `timeout` (closed by us after silence),
    `orphan` (a stop or reading came with no start yet)."""

    ACTIVE = "active"
    STOPPED = "stopped"
    TIMEOUT = "timeout"
    ORPHAN = "orphan"


class AccountKind(StrEnum):
    """A resident account: prepaid balance, monthly card, or exempt (the community pays)."""

    PREPAID = "prepaid"
    MONTHLY = "monthly"
    EXEMPT = "exempt"


class ReviewStatus(StrEnum):
    """A charge on the staff review list (no card, an unknown card, another alley's)."""

    OPEN = "open"
    ASSIGNED = "assigned"
    WAIVED = "waived"


class AdjustmentStatus(StrEnum):
    """A proposed correction of a charge: pending a second person, then approved or
    rejected."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class WorkOrderStatus(StrEnum):
    """A maintenance work order: open → in_progress → done."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class GapStatus(StrEnum):
    """A gap in a pile's `seq` (services/devices/presence.py): open (late messages may
    still fill it), filled, or lost (the window passed: possible data loss)."""

    OPEN = "open"
    FILLED = "filled"
    LOST = "lost"


class JobRunStatus(StrEnum):
    """How a job's run ended."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


class PortState(StrEnum):
    """A port as residents and staff see it (services/charging/availability.py), from its
    pile's presence, its status, its alerts and its maintenance."""

    FREE = "free"
    IN_USE = "in_use"
    FINISHED = "finished"
    FAULT = "fault"
    OFFLINE = "offline"
    OUT_OF_SERVICE = "out_of_service"
