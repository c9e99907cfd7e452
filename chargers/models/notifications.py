"""Who hears of an alley's alerts, and the notification outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class Contact(db.Model):
    """Who hears of an alley's alerts: level 1 first, level 2 on escalation."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer, default=1)
    channel: Mapped[str] = mapped_column(String(16))  # webhook / email
    target: Mapped[str] = mapped_column(String(512))  # URL or address
    # Webhook body: wecom / dingtalk / feishu, or auto (chosen by the URL's host).
    webhook_format: Mapped[str] = mapped_column(String(16), default="auto")
    # One contact setting for staff and residents: a contact with a phone and `public`
    # is shown on the residents' pages as who looks after the piles (the service phone).
    phone: Mapped[str] = mapped_column(String(32), default="", server_default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alley = relationship("Alley")


class Notification(db.Model):
    """Outbox: one message to one target, delivered by the worker with retries."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # Why it was sent: new, resend or escalation (alerts); due, overdue or escalation
    # (inspection reminders, alert_id NULL).
    reason: Mapped[str] = mapped_column(String(16), default="new")
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    # pending → sent, or failed after NOTIFY_MAX_ATTEMPTS
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
