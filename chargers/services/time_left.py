"""Time left on the ports in use: reads each active session's meter samples and the
alley's recent full charges, and asks the pure estimator (services/estimate.py).
Read only: no commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..models import ChargingSession, MeterSample, Pile
from .availability import PileView
from .estimate import Estimate, PastSession, Sample, estimate, next_free

HISTORY_DAYS = 60
HISTORY_LIMIT = 300


def alley_history(alley_id: int, now: datetime) -> list[PastSession]:
    """The alley's recent sessions that ended `full`: duration, energy and peak power."""
    peak = (select(MeterSample.session_id, func.max(MeterSample.power_w).label("peak"))
            .group_by(MeterSample.session_id).subquery())
    stmt = (select(ChargingSession.started_at, ChargingSession.ended_at,
                   ChargingSession.energy_wh, peak.c.peak)
            .join(Pile, ChargingSession.pile_id == Pile.id)
            .outerjoin(peak, peak.c.session_id == ChargingSession.id)
            .where(Pile.alley_id == alley_id, ChargingSession.status == "stopped",
                   ChargingSession.stop_reason == "full",
                   ChargingSession.started_at.is_not(None),
                   ChargingSession.ended_at >= now - timedelta(days=HISTORY_DAYS))
            .order_by(ChargingSession.ended_at.desc()).limit(HISTORY_LIMIT))
    return [PastSession((end - start).total_seconds(), energy or 0.0, pk)
            for start, end, energy, pk in db.session.execute(stmt) if end and end > start]


def _active_session(pile_id: str, port: int) -> ChargingSession | None:
    return db.session.scalar(
        select(ChargingSession).where(ChargingSession.pile_id == pile_id,
                                      ChargingSession.port == port,
                                      ChargingSession.status == "active")
        .order_by(ChargingSession.started_at.desc().nulls_last(), ChargingSession.id.desc())
        .limit(1))


def for_port(pile_id: str, port: int, since: datetime | None, history: list[PastSession],
             now: datetime) -> Estimate:
    """The estimate for one port in use (its active session; else from history alone,
    counted from when the port went into use)."""
    session = _active_session(pile_id, port)
    samples: list[Sample] = []
    start = since
    if session is not None:
        start = session.started_at or since
        rows = db.session.scalars(select(MeterSample).where(MeterSample.session_id == session.id)
                                  .order_by(MeterSample.ts))
        if start is not None:
            samples = [Sample((m.ts - start).total_seconds(), m.power_w, m.energy_wh)
                       for m in rows]
    elapsed = (now - start).total_seconds() if start else 0.0
    return estimate(samples, max(0.0, elapsed), history)


def fill(piles: list[PileView], alley_id: int, now: datetime) -> int | None:
    """Put an estimate on every charging port of these piles (of one alley); minutes
    until the first is expected free (None when there is no basis)."""
    history = alley_history(alley_id, now)
    found: list[Estimate] = []
    for pile in piles:
        for p in pile.ports:
            if p.state == "in_use" and p.status == "charging":
                p.estimate = for_port(pile.id, p.port, p.since, history, now)
                found.append(p.estimate)
    return next_free(found)
