"""The device-message ledger: which messages were applied (idempotency),
rejections kept for staff, running counters, sequence gaps and the fault events
as the piles reported them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class ProcessedMessage(db.Model):
    """(pile, message id) seen and applied: the idempotency ledger for QoS 1 redelivery.

    Rows older than DEDUP_RETENTION_DAYS are pruned by a job.
    """

    __tablename__ = "processed_messages"
    __table_args__ = (UniqueConstraint("pile_id", "msg_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(String(64))
    msg_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class IngestCounter(db.Model):
    """Running totals of the ingest, kept in the database so that every web process
    can serve them on /metrics: `accepted`, `duplicate`, `rejected:<reason>`, ..."""

    __tablename__ = "ingest_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Rejection(db.Model):
    """One rejected message, kept for staff to read (the latest N are kept)."""

    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    pile_id: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    payload_excerpt: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class FaultEvent(db.Model):
    """A fault raised or cleared, as the pile reported it (alerts build on these)."""

    __tablename__ = "fault_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(String(64), index=True)
    port: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_source: Mapped[str] = mapped_column(String(8), default="device")


class SeqGap(db.Model):
    """A jump in a pile's `seq`: messages possibly lost between pile and backend.

    `status`: `open` (the missing numbers may still arrive, within SEQ_GAP_WINDOW_S),
    `filled` (they all arrived late: nothing lost), `lost` (the window passed: a
    `data_loss` alert; still filled, and the alert cleared, if they do arrive) or
    `closed` (lost, and the pile rebooted: its new numbers cannot fill it).
    `extra["arrived"]`: the missing numbers that arrived so far."""

    __tablename__ = "seq_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(String(64), index=True)
    expected_seq: Mapped[int] = mapped_column(Integer)
    got_seq: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
