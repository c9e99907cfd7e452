"""Fault reports from the piles, kept as records; the alerts build on them.
Called by the ingest inside its batch: no commit."""

from __future__ import annotations

from datetime import datetime

from ..extensions import db
from ..models import FaultEvent, Pile
from . import alerts


def on_fault(pile: Pile, *, port: int | None, code: str, active: bool, value: float | None,
             detail: str | None, at: datetime, time_source: str, received_at: datetime,
             now: datetime) -> FaultEvent:
    """Keep the fault event and tell the alerts."""
    event = FaultEvent(pile_id=pile.id, port=port, code=code, active=active, value=value,
                       detail=detail, ts=at, received_at=received_at, time_source=time_source)
    db.session.add(event)
    alerts.on_fault(pile, port, code, active, value, detail, at, now)
    return event
