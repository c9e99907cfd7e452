"""Alerts for staff and their audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class Alert(db.Model):
    """One problem on (pile, port, code); repeats bump `count` instead of opening another."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32))  # a fault code, or "offline"
    severity: Mapped[str] = mapped_column(String(16))  # critical/major/minor/warning
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    value: Mapped[float | None] = mapped_column(Float)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    # Raised and cleared within the debounce: kept in history, pages nobody.
    flapped: Mapped[bool] = mapped_column(Boolean, default=False)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The automatic cut-off, as the pile confirmed it (services/alerts/cutoff.py): none →
    # pending (commands asked and being sent) → confirmed (the pile acked and no
    # port of the cut reports charging) or unconfirmed (not within CUTOFF_CONFIRM_S;
    # escalated, still re-sent while the alarm lasts, and confirmed if the pile
    # complies later).
    cutoff: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    cutoff_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cutoff_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cutoff_unconfirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the cut-off's unanswered commands are sent again, and how many rounds so far.
    cutoff_next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cutoff_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    pile = relationship("Pile")
    # Who acknowledged and who cleared it, for display: read-only (the services set
    # the id columns) so that a list can load them eagerly instead of one query each.
    acknowledger = relationship("User", foreign_keys=[acknowledged_by], viewonly=True)
    clearer = relationship("User", foreign_keys=[cleared_by], viewonly=True)
    events: Mapped[list[AlertEvent]] = relationship(
        back_populates="alert", order_by="AlertEvent.at", cascade="all, delete-orphan"
    )

    def record(self, action: str, at: datetime, user=None, note: str | None = None,
               data: dict | None = None) -> AlertEvent:
        """Add one change to the alert's audit trail: who, when, what (`action`, a code
        of labels.EVENT_LABELS, with its parameters in `data`), and the words of a
        person or of the pile (`note`), kept as they were written."""
        event = AlertEvent(action=action, at=at, user_id=user.id if user else None, note=note,
                           data=data or None)
        self.events.append(event)
        return event


class AlertEvent(db.Model):
    """Every change to an alert: who, when, what. `action` is a code and `data` its
    structured parameters (commands, levels and contacts paged, counts, times), read
    through the label tables in the reader's language; `note` holds only words a
    person or the pile wrote (staff's note, the pile's fault detail). Rows written
    before `data` existed keep the service's English sentence in `note`."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="events")
    user = relationship("User")
