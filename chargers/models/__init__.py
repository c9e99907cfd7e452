"""The data model, one module per area; import from here."""

from .accounts import ApiToken, User, user_alleys
from .alerts import Alert, AlertEvent, Command, Contact, Notification
from .base import UTCDateTime, utcnow
from .ingest import (
    ChargingSession,
    FaultEvent,
    IngestCounter,
    MeterSample,
    ProcessedMessage,
    Rejection,
    SeqGap,
)
from .ops import JobRun, Lease
from .registry import Alley, Pile, Port

__all__ = [
    "Alert",
    "AlertEvent",
    "Alley",
    "ApiToken",
    "ChargingSession",
    "Command",
    "Contact",
    "FaultEvent",
    "IngestCounter",
    "JobRun",
    "Lease",
    "MeterSample",
    "Notification",
    "Pile",
    "Port",
    "ProcessedMessage",
    "Rejection",
    "SeqGap",
    "UTCDateTime",
    "User",
    "user_alleys",
    "utcnow",
]
