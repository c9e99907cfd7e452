"""Maintenance and the fire-safety routine: inspection plans, their signed records,
work orders with their history, the reminders already sent, and ports left plugged
in after a finished charge (overstay)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class InspectionPlan(db.Model):
    """A recurring check of an alley's site (pile_id NULL) or of one pile: its kind,
    period, checklist and the local date it is next due (in the alley's zone)."""

    __tablename__ = "inspection_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    pile_id: Mapped[str | None] = mapped_column(ForeignKey("piles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # daily / monthly / quarterly / custom
    name: Mapped[str] = mapped_column(String(120))
    # The period: `every` units of `unit` (day / week / month).
    every: Mapped[int] = mapped_column(Integer, default=1)
    unit: Mapped[str] = mapped_column(String(8), default="day")
    # [{"key": "fire_lane", "text": "..."}], in the order shown.
    checklist: Mapped[list] = mapped_column(JSON, default=list)
    next_due: Mapped[date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alley = relationship("Alley")
    pile = relationship("Pile")


class InspectionRecord(db.Model):
    """One check as carried out and signed; never changed afterwards (a correction is
    a new record). `items` keeps each checklist line's text as it was asked."""

    __tablename__ = "inspection_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_plans.id"), index=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    pile_id: Mapped[str | None] = mapped_column(ForeignKey("piles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(120))
    # [{"key", "text", "result": "pass"|"fail"|"na", "note"}]
    items: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list] = mapped_column(JSON, default=list)  # stored file names
    # The plan's due date this record answered (None: an unplanned check).
    due_date: Mapped[date | None] = mapped_column(Date)
    signed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    plan = relationship("InspectionPlan")
    alley = relationship("Alley")
    pile = relationship("Pile")
    signer = relationship("User")

    @property
    def failed(self) -> list[dict]:
        """The items marked fail."""
        return [i for i in self.items if i.get("result") == "fail"]


@event.listens_for(InspectionRecord, "before_update")
def _records_are_immutable(mapper, connection, target):  # noqa: ARG001
    raise ValueError("an inspection record is never changed; record a correction instead")


class WorkOrder(db.Model):
    """A repair (from a failed checklist item) or an unscheduled inspection (from the
    fault rule): open → in_progress → done, with who did what in its events."""

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    pile_id: Mapped[str | None] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # repair / inspection
    # Why it was opened: a code (checklist_fail, fault_burst, over_temperature, staff)
    # with its data; words belong to the page.
    reason: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_records.id"))
    # Whether opening it took the port (or pile) out of service: done puts it back.
    took_out_of_service: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    alley = relationship("Alley")
    pile = relationship("Pile")
    record = relationship("InspectionRecord")
    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="order", order_by="WorkOrderEvent.id", cascade="all, delete-orphan"
    )

    def record_event(self, action: str, at: datetime, user=None, note: str | None = None,
                     data: dict | None = None) -> WorkOrderEvent:
        """Add one change to the order's history (who, when, what)."""
        ev = WorkOrderEvent(action=action, at=at, user_id=user.id if user else None,
                            note=note, data=data or {})
        self.events.append(ev)
        return ev


class WorkOrderEvent(db.Model):
    """Every change to a work order: an action code, who, when, a note."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    order: Mapped[WorkOrder] = relationship(back_populates="events")
    user = relationship("User")


class InspectionReminder(db.Model):
    """A reminder already sent: one per plan, due date and stage (due / overdue /
    escalation), so the daily job never says the same thing twice."""

    __tablename__ = "inspection_reminders"
    __table_args__ = (UniqueConstraint("plan_id", "due_date", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("inspection_plans.id", ondelete="CASCADE"))
    due_date: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(16))
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Overstay(db.Model):
    """A port whose charge finished but whose plug stays in (status `finishing`) past
    the allowed minutes: open while it lasts, closed when the port changes."""

    __tablename__ = "overstays"

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the port's status_since
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
