"""Overstay: a port whose charge is finished (status `finishing`) but whose plug is
still in, blocking the next resident. The `overstay` job records each one past
OVERSTAY_MINUTES (an Overstay row, open while it lasts); the residents' page asks
`minutes_by_port` and shows "充满 40 分钟，请挪车".

The card holder is nudged: the card of the port's last session before the charge
finished, the resident account holding that card in the pile's alley, a message
through that account's channels (reminders.queue_to_account: e-mail and/or SMS) when
the overstay is noticed and again every OVERSTAY_NUDGE_MINUTES while it lasts
(`Overstay.last_nudged_at`). Never for an unknown card or an account without
channels; the public pages show minutes only, nothing about the holder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ...extensions import db
from ...models import ChargingSession, Overstay, Pile, Port, ResidentAccount, utcnow
from ...settings import OverstayRule
from ..billing import accounts, reminders

FINISHED = "finishing"


def scan(rule: OverstayRule, now: datetime | None = None) -> tuple[int, int, int]:
    """Open an Overstay for every port `finishing` for at least `rule.minutes`, close
    the open ones whose port moved on, nudge the card holders due. Returns (opened,
    closed, nudged). Commits."""
    now = now or utcnow()
    limit = now - timedelta(minutes=rule.minutes)
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
    db.session.flush()
    nudged = _nudge(rule, now) if rule.nudge_minutes > 0 else 0
    db.session.commit()
    return opened, closed, nudged


def _holder(o: Overstay, pile: Pile) -> ResidentAccount | None:
    """The active account holding the card of the port's last session that began
    before the charge finished, in the pile's alley; None for an unknown card."""
    card = db.session.scalar(
        select(ChargingSession.card)
        .where(ChargingSession.pile_id == o.pile_id, ChargingSession.port == o.port,
               ChargingSession.status != "orphan",
               ChargingSession.started_at <= o.finished_at)
        .order_by(ChargingSession.started_at.desc(), ChargingSession.id.desc()).limit(1))
    return accounts.active_holder(pile.alley_id, card)


def _nudge(rule: OverstayRule, now: datetime) -> int:
    """Queue a nudge for each open overstay never nudged or last nudged at least
    `rule.nudge_minutes` ago. No commit."""
    every = timedelta(minutes=rule.nudge_minutes)
    nudged = 0
    for o in db.session.scalars(select(Overstay).where(Overstay.ended_at.is_(None))
                                .order_by(Overstay.id)):
        if o.last_nudged_at is not None and now - o.last_nudged_at < every:
            continue
        pile = db.session.get(Pile, o.pile_id)
        acc = _holder(o, pile)
        if acc is None:
            continue
        data = {"alley": pile.alley.name if pile.alley else "",
                "pile": pile.label or pile.id, "port": o.port,
                "minutes": max(0, int((now - o.finished_at).total_seconds() // 60))}
        if reminders.queue_to_account(acc, "overstay", data, rule.paging.language, now):
            o.last_nudged_at = now
            nudged += 1
    return nudged


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
