"""Helpers for billing tests: finished sessions written straight to the database (the
ingest path is tested elsewhere), tariffs and accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alley, ChargingSession, MeterSample, Tariff

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def set_tariff(slug: str, **fields) -> Tariff:
    """Change the alley's first tariff in place (tests only: real changes add versions)."""
    alley = db.session.scalar(select(Alley).where(Alley.slug == slug))
    t = db.session.scalar(select(Tariff).where(Tariff.alley_id == alley.id))
    t.effective_from = T0 - timedelta(days=365)
    for k, v in fields.items():
        setattr(t, k, v)
    db.session.commit()
    return t


def finished(pile: str, ref: str, card: str | None, minutes: float, wh: float, *,
             port: int = 1, start: datetime = T0, status: str = "stopped",
             samples: list[tuple[float, float, float]] = ()) -> ChargingSession:
    """A finished session; samples are (minute, W, Wh)."""
    s = ChargingSession(pile_id=pile, port=port, session_ref=ref, card=card, status=status,
                        started_at=start, ended_at=start + timedelta(minutes=minutes),
                        start_meter_wh=0.0, energy_wh=wh, stop_reason="unplugged")
    db.session.add(s)
    db.session.flush()
    for m, w, e in samples:
        db.session.add(MeterSample(pile_id=pile, port=port, session_id=s.id,
                                   ts=start + timedelta(minutes=m), power_w=w, energy_wh=e))
    return s
