"""Pile configuration (desired against reported) and the risk engine's per-card
records: each card's usual charge, and staff's "battery checked" marks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class PileConfig(db.Model):
    """A pile's configuration: its own overrides, the settings desired for it (alley's
    device_settings with the overrides on top) under a version that grows with every
    change, and what the pile last reported applying (its `config` report)."""

    __tablename__ = "pile_configs"

    pile_id: Mapped[str] = mapped_column(ForeignKey("piles.id"), primary_key=True)
    overrides: Mapped[dict] = mapped_column(JSON, default=dict)
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    desired: Mapped[dict] = mapped_column(JSON, default=dict)
    reported_version: Mapped[int | None] = mapped_column(Integer)
    reported: Mapped[dict | None] = mapped_column(JSON)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last `config` command made for the pile: its version and when.
    sent_version: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CardProfile(db.Model):
    """What a card's charges usually look like in an alley (its healthy, finished
    sessions): the bulk power and the energy its pack takes (the largest and the least
    full charge: services/safety/cards.py `full_energy` reads them). Updated by the
    `risk-review` job; the grading reads it once per session."""

    __tablename__ = "card_profiles"

    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), primary_key=True)
    card: Mapped[str] = mapped_column(String(64), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    bulk_w: Mapped[float | None] = mapped_column()
    energy_wh: Mapped[float | None] = mapped_column()  # the largest full charge
    energy_low_wh: Mapped[float | None] = mapped_column()  # the least full charge
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CardCheck(db.Model):
    """Staff marked a card's battery (and charger) checked, with a note. The card's
    sessions keep their grades: this is a line in its history, not an erasure."""

    __tablename__ = "card_checks"
    __table_args__ = (UniqueConstraint("alley_id", "card", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alley_id: Mapped[int] = mapped_column(ForeignKey("alleys.id"), index=True)
    card: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
