"""The data model, one module per area; import from here."""

from .accounts import ApiToken, User, user_alleys
from .alerts import Alert, AlertEvent
from .base import UTCDateTime, utcnow
from .billing import (
    AccountCard,
    Adjustment,
    CardSale,
    IdempotencyKey,
    LedgerAccount,
    LedgerChain,
    LedgerEntry,
    MoneyAudit,
    Posting,
    ResidentAccount,
    ReviewItem,
    Tariff,
)
from .budget import Authorization, FeederSample, FeederState
from .charging import ChargingSession, MeterSample
from .commands import Command
from .maintenance import (
    InspectionPlan,
    InspectionRecord,
    InspectionReminder,
    Overstay,
    WorkOrder,
    WorkOrderEvent,
)
from .message_log import FaultEvent, IngestCounter, ProcessedMessage, Rejection, SeqGap
from .notifications import Contact, Notification
from .ops import JobRun, JobRunLog, Lease
from .payments import (
    PaymentBill,
    PaymentMismatch,
    PaymentNotice,
    PaymentOrder,
    PaymentRefund,
)
from .registry import Alley, Pile, Port
from .reports import ProblemReport
from .safety import CardCheck, CardProfile, PileConfig
from .statements import (
    GridBill,
    MonthClose,
    NoticeVersion,
    PostingMonth,
    Reminder,
    ReminderSettings,
    ResidentChannels,
    Statement,
)

__all__ = [
    "PaymentBill",
    "PaymentMismatch",
    "PaymentNotice",
    "PaymentOrder",
    "PaymentRefund",
    "Authorization", "FeederSample", "FeederState",
    "CardCheck",
    "CardProfile",
    "PileConfig",
    "GridBill",
    "IdempotencyKey",
    "MonthClose",
    "NoticeVersion",
    "PostingMonth",
    "Reminder",
    "ReminderSettings",
    "ResidentChannels",
    "Statement",
    "AccountCard",
    "CardSale",
    "Adjustment",
    "LedgerAccount",
    "LedgerChain",
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
    "InspectionPlan",
    "InspectionRecord",
    "InspectionReminder",
    "JobRun",
    "JobRunLog",
    "Lease",
    "MeterSample",
    "Notification",
    "Overstay",
    "Pile",
    "Port",
    "ProblemReport",
    "ProcessedMessage",
    "Rejection",
    "SeqGap",
    "UTCDateTime",
    "User",
    "WorkOrder",
    "WorkOrderEvent",
    "user_alleys",
    "utcnow",
]
