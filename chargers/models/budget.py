"""The alley's power budget: every `authorize` answer (the queue is made of the queued
ones), the feeder's load sampled over the day, and the over-limit watch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class Authorization(db.Model):
    """One `authorize` a pile asked and what we answered: who tried which port with
    which card, accepted / queued / rejected (with its reason), when. A queued one is a
    place in the alley's queue (`queue_state`) until it starts or is dropped."""

    __tablename__ = "authorizations"
    __table_args__ = (UniqueConstraint("pile_id", "message_id"),
                      Index("ix_authorizations_queue", "alley_id", "queue_state", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    card: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))  # the authorize's `id`: our `ref`
    account_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"),
                                                   index=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)  # chosen pile / arrival time
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result: Mapped[str] = mapped_column(String(16), index=True)  # AuthorizeResult
    reason: Mapped[str | None] = mapped_column(String(16))  # AuthorizeReason
    position: Mapped[int | None] = mapped_column(Integer)  # in the queue, when queued
    max_wh: Mapped[int | None] = mapped_column(Integer)
    max_minutes: Mapped[int | None] = mapped_column(Integer)
    # What we expect the session to draw (the card's usual bulk power, else the port
    # limit) until its own readings come; and the headroom we saw when answering.
    expected_w: Mapped[int] = mapped_column(Integer, default=0)
    headroom_w: Mapped[int | None] = mapped_column(Integer)
    command_id: Mapped[str | None] = mapped_column(String(64))  # the answer on `cmd`
    # Power allowed from here (the accepted answer, or the `start` of a queued one):
    # its expected draw counts against the budget until its session reports.
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue_state: Mapped[str | None] = mapped_column(String(16))  # QueueState
    start_command_id: Mapped[str | None] = mapped_column(String(64))
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # started or dropped
    drop_reason: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("charging_sessions.id"),
                                                   index=True)


class FeederSample(db.Model):
    """The alley's charging load and queue length at one moment (the `budget-check`
    job): the day's load curve on the staff feeder page."""

    __tablename__ = "feeder_samples"
    __table_args__ = (Index("ix_feeder_samples_alley_at", "alley_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    load_w: Mapped[float] = mapped_column(Float)
    queue: Mapped[int] = mapped_column(Integer, default=0)
    limit_w: Mapped[int | None] = mapped_column(Integer)


class FeederState(db.Model):
    """The over-limit watch of one alley: since when, and over how many readings, the
    load stayed above the limit; when the backend last stopped sessions for it."""

    __tablename__ = "feeder_states"

    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), primary_key=True)
    over_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    over_readings: Mapped[int] = mapped_column(Integer, default=0)
    last_reading_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_stop_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
