"""Time left on the ports in use: reads each active session's meter samples and the
alley's recent full charges, and asks the pure estimator (services/charging/estimate.py).
Read only: no commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from ...constants import PortState, PortStatus, SessionStatus
from ...extensions import db
from ...models import ChargingSession, MeterSample, Pile
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
            .where(Pile.alley_id == alley_id, ChargingSession.status == SessionStatus.STOPPED,
                   ChargingSession.stop_reason == "full",
                   ChargingSession.started_at.is_not(None),
                   ChargingSession.ended_at >= now - timedelta(days=HISTORY_DAYS))
            .order_by(ChargingSession.ended_at.desc()).limit(HISTORY_LIMIT))
    return [PastSession((end - start).total_seconds(), energy or 0.0, pk)
            for start, end, energy, pk in db.session.execute(stmt) if end and end > start]


def _active_sessions(pile_ids: list[str]) -> dict[tuple[str, int], ChargingSession]:
    """(pile, port) → its active session (the newest if several were left open)."""
    out: dict[tuple[str, int], ChargingSession] = {}
    if not pile_ids:
        return out
    stmt = (select(ChargingSession).where(ChargingSession.pile_id.in_(pile_ids),
                                          ChargingSession.status == SessionStatus.ACTIVE)
            .order_by(ChargingSession.id))
    for s in db.session.scalars(stmt):
        out[(s.pile_id, s.port)] = s
    return out


def _samples(session_ids: list[int]) -> dict[int, list[tuple[datetime, float, float]]]:
    """Session id → its meter readings (ts, W, Wh), oldest first: one query, plain rows
    (a page of 100 charging ports reads some 10^4 of them every refresh)."""
    out: dict[int, list[tuple[datetime, float, float]]] = {i: [] for i in session_ids}
    if not session_ids:
        return out
    stmt = (select(MeterSample.session_id, MeterSample.ts, MeterSample.power_w,
                   MeterSample.energy_wh)
            .where(MeterSample.session_id.in_(session_ids))
            .order_by(MeterSample.session_id, MeterSample.ts))
    for session_id, ts, w, wh in db.session.execute(stmt):
        out[session_id].append((ts, w, wh))
    return out


def for_port(session: ChargingSession | None, rows: list[tuple[datetime, float, float]],
             since: datetime | None,
             history: list[PastSession], now: datetime) -> Estimate:
    """The estimate for one port in use: its active session's curve, else history alone,
    counted from when the port went into use."""
    start = (session.started_at if session is not None else None) or since
    samples = [Sample((ts - start).total_seconds(), w, wh)
               for ts, w, wh in rows] if start is not None else []
    elapsed = (now - start).total_seconds() if start else 0.0
    return estimate(samples, max(0.0, elapsed), history)


def fill(piles: list[PileView], alley_id: int, now: datetime) -> int | None:
    """Put an estimate on every charging port of these piles (of one alley); minutes
    until the first is expected free (None when there is no basis)."""
    charging = [(pile, p) for pile in piles for p in pile.ports
                if p.state == PortState.IN_USE and p.status == PortStatus.CHARGING]
    if not charging:
        return None
    history = alley_history(alley_id, now)
    sessions = _active_sessions(sorted({pile.id for pile, _ in charging}))
    samples = _samples([s.id for s in sessions.values()])
    found: list[Estimate] = []
    for pile, p in charging:
        session = sessions.get((pile.id, p.port))
        p.estimate = for_port(session, samples.get(session.id, []) if session else [], p.since,
                              history, now)
        found.append(p.estimate)
    return next_free(found)
