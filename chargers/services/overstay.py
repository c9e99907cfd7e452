"""Overstay: a port whose charge is finished (status `finishing`) but whose plug is
still in, blocking the next resident. The `overstay` job records each one past
OVERSTAY_MINUTES (an Overstay row, open while it lasts); the residents' page asks
`minutes_by_port` and shows "充满 40 分钟，请挪车".

Nudging the card holder waits for billing's accounts to know the holder's contact:
`Overstay.last_nudged_at` is kept for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Overstay, Pile, Port, utcnow

FINISHED = "finishing"


def scan(minutes: int, now: datetime | None = None) -> tuple[int, int]:
    """Open an Overstay for every port `finishing` for at least `minutes`, close the
    open ones whose port moved on. Returns (opened, closed). Commits."""
    now = now or utcnow()
    limit = now - timedelta(minutes=minutes)
    open_rows = {(o.pile_id, o.port): o for o in db.session.scalars(
        select(Overstay).where(Overstay.ended_at.is_(None)))}
    ports = {(p.pile_id, p.number): p for p in db.session.scalars(
        select(Port).where(Port.status == FINISHED))}
    opened = closed = 0
    for key, row in open_rows.items():
        port = ports.get(key)
        if port is None or port.status_since != row.finished_at:
            row.ended_at = now  # unplugged (or a new charge began and finished again)
            closed += 1
    for key, port in ports.items():
        row = open_rows.get(key)
        if port.status_since > limit:
            continue
        if row is not None and row.ended_at is None:
            continue
        db.session.add(Overstay(pile_id=port.pile_id, port=port.number,
                                finished_at=port.status_since, noticed_at=now))
        opened += 1
    db.session.commit()
    return opened, closed


def minutes_by_port(pile_ids: list[str] | None = None, *, alley_id: int | None = None,
                    now: datetime | None = None) -> dict[tuple[str, int], int]:
    """{(pile id, port): whole minutes since the charge finished} of the open
    overstays of these piles (or of an alley): what the residents' page shows."""
    now = now or utcnow()
    stmt = select(Overstay).where(Overstay.ended_at.is_(None))
    if pile_ids is not None:
        stmt = stmt.where(Overstay.pile_id.in_(pile_ids))
    if alley_id is not None:
        stmt = stmt.join(Pile, Pile.id == Overstay.pile_id).where(Pile.alley_id == alley_id)
    return {(o.pile_id, o.port): max(0, int((now - o.finished_at).total_seconds() // 60))
            for o in db.session.scalars(stmt)}
