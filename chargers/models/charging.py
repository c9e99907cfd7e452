"""Charging sessions and their meter samples."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class ChargingSession(db.Model):
    """One charge on one port, from the pile's session start/stop (and meters)."""

    __tablename__ = "charging_sessions"
    # (settled_at, id): settlement takes the next unsettled sessions in id order
    # straight from this index, however many are settled already. started_at: the
    # grade's temperature peers and the month's lists read a window of start times.
    __table_args__ = (UniqueConstraint("pile_id", "session_ref"),
                      Index("ix_charging_sessions_unsettled", "settled_at", "id"),
                      Index("ix_charging_sessions_started_at", "started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    session_ref: Mapped[str] = mapped_column(String(64))  # the pile's session id
    card: Mapped[str | None] = mapped_column(String(64))
    # active: started, not stopped; stopped: pile said stop; timeout: closed by us
    # after silence; orphan: a stop (or meter) with no start yet.
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_meter_wh: Mapped[float | None] = mapped_column(Float)
    energy_wh: Mapped[float] = mapped_column(Float, default=0.0)
    stop_reason: Mapped[str | None] = mapped_column(String(16))
    last_meter_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The power of the newest reading (the alley's feeder load is their sum).
    last_power_w: Mapped[float | None] = mapped_column(Float)
    # Whether started_at/ended_at come from the pile's clock ("device") or from
    # arrival time ("server") because the pile's clock was implausible.
    time_source: Mapped[str] = mapped_column(String(8), default="device")
    # Set once, at settlement (then never changed): amount = energy + service, in fen.
    energy_cents: Mapped[int | None] = mapped_column(Integer)
    service_cents: Mapped[int | None] = mapped_column(Integer)
    amount_cents: Mapped[int | None] = mapped_column(Integer)
    tariff_cents_per_kwh: Mapped[int | None] = mapped_column(Integer)
    tariff_id: Mapped[int | None] = mapped_column(ForeignKey("tariffs.id"))
    # The power tier (its index in the tariff's table, e.g. "2") and the readings
    # that chose it; `bill` is the priced breakdown the receipt shows.
    tier: Mapped[str | None] = mapped_column(String(16))
    tier_evidence: Mapped[dict | None] = mapped_column(JSON)
    bill: Mapped[dict | None] = mapped_column(JSON)
    # charged / covered (exempt, monthly card) / review / waived
    billing: Mapped[str | None] = mapped_column(String(16), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("resident_accounts.id"),
                                                   index=True)
    receipt_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    # The receipt's serial number, unique per alley and year: "<alley>-<YYYY>-<n>".
    receipt_serial: Mapped[str | None] = mapped_column(String(32), unique=True)
    # A monthly card's part: the seconds of this session its hours covered and the fen
    # it bore (the rest is charged); the part of the charge the balance did not hold
    # (the resident's debt from this session).
    covered_s: Mapped[int | None] = mapped_column(Integer)
    covered_cents: Mapped[int | None] = mapped_column(Integer)
    shortfall_cents: Mapped[int | None] = mapped_column(Integer)
    # Occupancy fee (占位费), a line of its own: amount = energy + service + occupancy.
    occupancy_cents: Mapped[int | None] = mapped_column(Integer)
    # Meter resets: the session's cumulative reading fell (the counter restarted);
    # energy_wh = meter_base_wh (the segments before) + the current segment's reading.
    meter_resets: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    meter_base_wh: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    meter_last_wh: Mapped[float | None] = mapped_column(Float)
    # When the system asked the pile to stop (once per session: the balance guard, the
    # limits and the risk grade, the power budget), why, and the stop command it sent
    # (services/charging/sessions.ask_stop; endings.stop_asked reads what came of it).
    guard_stop_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    guard_reason: Mapped[str | None] = mapped_column(String(32))
    guard_command_id: Mapped[str | None] = mapped_column(String(64))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Risk grade from the curve (services/safety/risk.py): low/mid/high, its reason
    # codes, the cheap per-reading state the grading keeps, and when staff were
    # alerted / the holder was told (once per session).
    risk: Mapped[str | None] = mapped_column(String(8), index=True)
    risk_reasons: Mapped[list | None] = mapped_column(JSON)
    risk_state: Mapped[dict | None] = mapped_column(JSON)
    risk_alerted: Mapped[str | None] = mapped_column(String(8))
    risk_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    pile = relationship("Pile")


class MeterSample(db.Model):
    __tablename__ = "meter_samples"
    __table_args__ = (Index("ix_meter_samples_session_ts", "session_id", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pile_id: Mapped[str] = mapped_column(String(64), index=True)
    port: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("charging_sessions.id"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    power_w: Mapped[float] = mapped_column(Float)
    energy_wh: Mapped[float] = mapped_column(Float)
    voltage_v: Mapped[float | None] = mapped_column(Float)
    current_a: Mapped[float | None] = mapped_column(Float)
    temp_c: Mapped[float | None] = mapped_column(Float)
