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


# The alert filter's word for "active or acknowledged".
OPEN_FILTER = "open"


class NotificationStatus(StrEnum):
    """A message in the outbox: pending → sent, or failed after NOTIFY_MAX_ATTEMPTS."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
