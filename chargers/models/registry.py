"""Alleys, their piles and the piles' ports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..settings import AlleyDefaults
from .base import UTCDateTime, utcnow

# Port statuses of the device protocol (OCPP names).


class Alley(db.Model):
    __tablename__ = "alleys"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    street: Mapped[str] = mapped_column(String(120), default="")  # 街道, e.g. 双塔街道
    community: Mapped[str] = mapped_column(String(120), default="")  # 社区
    address: Mapped[str] = mapped_column(String(255), default="")
    timezone: Mapped[str] = mapped_column(String(64), default=AlleyDefaults.timezone)
    # Free-form contact lines shown to staff, e.g. "网格员 王阿姨 138…"; alert
    # recipients are the structured Contact rows.
    contacts: Mapped[str] = mapped_column(Text, default="")
    tariff_cents_per_kwh: Mapped[int] = mapped_column(Integer, default=100)
    # A critical fault cuts the port off at once (stop + disable), unless switched off.
    auto_cutoff: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by every change residents can see (a port, a pile, an alert): the key of
    # the alley's cached view and of its ETag.
    state_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Billing: sessions on unknown cards may charge on (reviewed later) instead of being
    # stopped by the balance guard after its grace.
    allow_unbilled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The device protocol's `config` keys desired for every pile of the alley (a pile's
    # own overrides win): services/devices/config.py.
    device_settings: Mapped[dict | None] = mapped_column(JSON, default=dict)
    # Online top-up limits of this alley (fen); None: the deployment's PAYMENTS_MIN/MAX_CENTS
    # (services/payments/limits.py).
    topup_min_cents: Mapped[int | None] = mapped_column(Integer)
    topup_max_cents: Mapped[int | None] = mapped_column(Integer)
    # The power the alley's shared supply may carry for charging (None: no budget) and
    # the safety margin kept under it (None: the deployment's BUDGET_MARGIN_PCT).
    feeder_limit_w: Mapped[int | None] = mapped_column(Integer)
    feeder_margin_w: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    piles: Mapped[list[Pile]] = relationship(
        back_populates="alley", order_by="Pile.label", cascade="all, delete-orphan"
    )


class Pile(db.Model):
    __tablename__ = "piles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the device serial
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    port_count: Mapped[int] = mapped_column(Integer)
    location_note: Mapped[str] = mapped_column(String(255), default="")
    model: Mapped[str | None] = mapped_column(String(64))
    firmware: Mapped[str | None] = mapped_column(String(64))
    max_power_w: Mapped[int | None] = mapped_column(Integer)
    secret_hash: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    online_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the pile is offline: "will" (the broker said so: only a new `online 1`
    # brings it back) or "heartbeat" (missed heartbeats: any fresh message does).
    offline_reason: Mapped[str | None] = mapped_column(String(16))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_boot_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Highest `seq` seen since the pile's last boot; a jump records a SeqGap.
    last_seq: Mapped[int | None] = mapped_column(Integer)
    # The newest pile-clock time among the messages since that boot: a lower `seq`
    # with a newer time means the pile rebooted and its `boot` is still on the way.
    last_seq_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    # v1.1 features the pile announced in its last boot (`config`, `authorize`, `start`).
    features: Mapped[list | None] = mapped_column(JSON, default=list)
    # The power this pile's own supply line may carry for charging (None: only the
    # alley's feeder limit applies): services/budget.
    power_limit_w: Mapped[int | None] = mapped_column(Integer)
    # Since when its load has stayed over that limit (None: under it; services/budget).
    over_limit_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Times a session's cumulative energy reading fell on this pile (counter resets).
    meter_resets: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    alley: Mapped[Alley] = relationship(back_populates="piles")
    ports: Mapped[list[Port]] = relationship(
        back_populates="pile", order_by="Port.number", cascade="all, delete-orphan"
    )


class Port(db.Model):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("pile_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="unavailable")
    status_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Time of the device message that set `status`, so an older message arriving
    # late cannot overwrite a newer state.
    status_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    pile: Mapped[Pile] = relationship(back_populates="ports")
