"""The data model, one module per area; import from here."""

from .accounts import ApiToken, User, user_alleys
from .alerts import Alert, AlertEvent
from .base import UTCDateTime, utcnow
from .billing import (
    AccountCard,
    Adjustment,
    LedgerAccount,
    LedgerEntry,
    MoneyAudit,
    Posting,
    ResidentAccount,
    ReviewItem,
    Tariff,
)
from .charging import ChargingSession, MeterSample
from .commands import Command
from .ledger import FaultEvent, IngestCounter, ProcessedMessage, Rejection, SeqGap
from .notifications import Contact, Notification
from .ops import JobRun, Lease
from .registry import Alley, Pile, Port

__all__ = [
    "AccountCard",
    "Adjustment",
    "LedgerAccount",
    "LedgerEntry",
    "MoneyAudit",
    "Posting",
    "ResidentAccount",
    "ReviewItem",
    "Tariff",
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
