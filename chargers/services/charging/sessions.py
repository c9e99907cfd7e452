"""Charging sessions from the piles' `session` start/stop and `meter` messages.

One session per (pile, session id), whatever order its messages arrive in:
- a stop (or a meter) before its start makes an `orphan` session, completed when
  the start arrives;
- a start that never stops is closed by a job after inactivity with status
  `timeout`, ending at its last meter reading (a late real stop still corrects it
  unless it was settled);
- every meter reading is kept as a MeterSample, for charts and billing;
- a session's energy is the sum of its counter's segments: a cumulative reading (meter
  or stop) below the last one is a counter reset, counted on the session and the pile.

The ingest calls the `on_*` functions inside its batch (no commit); the job
function `close_stale` commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ...constants import CommandAction, SessionStatus
from ...extensions import db
from ...models import ChargingSession, Command, MeterSample, Pile, User, bulk, utcnow
from .. import scope
from ..billing import settlement
from ..devices import commands
from ..errors import NotFound

log = logging.getLogger(__name__)
OPEN = ("active", "orphan")


def _get(pile: Pile, ref: str, cache: dict | None) -> ChargingSession | None:
    """The session (pile, ref). `cache` holds the sessions the caller's batch has
    seen or made, so the lookup needs no flush of pending rows."""
    key = (pile.id, ref)
    if cache is not None and key in cache:
        return cache[key]
    with db.session.no_autoflush:
        s = db.session.scalar(
            select(ChargingSession).where(ChargingSession.pile_id == pile.id,
                                          ChargingSession.session_ref == ref)
        )
    if cache is not None and s is not None:
        cache[key] = s
    return s


def prefetch(keys: set[tuple[str, str]], cache: dict) -> None:
    """Load the sessions (pile, ref) a batch names into `cache` in one query; the
    ones that do not exist are cached as None (no lookup per message then)."""
    keys = {k for k in keys if k not in cache}
    if not keys:
        return
    with db.session.no_autoflush:
        found = db.session.scalars(select(ChargingSession).where(
            bulk.pairs_in((ChargingSession.pile_id, ChargingSession.session_ref), keys)))
        for s in found:
            cache[(s.pile_id, s.session_ref)] = s
    for k in keys:
        cache.setdefault(k, None)


def _new(pile: Pile, port: int, ref: str, status: str, time_source: str,
         cache: dict | None) -> ChargingSession:
    s = ChargingSession(pile_id=pile.id, port=port, session_ref=ref, status=status,
                        energy_wh=0.0, time_source=time_source)
    db.session.add(s)
    if cache is not None:
        cache[(pile.id, ref)] = s
    return s


def _mark_time_source(s: ChargingSession, time_source: str) -> None:
    # Once any of the session's times comes from the server clock, say so.
    if time_source == "server":
        s.time_source = "server"


@dataclass(frozen=True)
class Start:
    port: int
    ref: str
    card: str | None
    meter_wh: float
    at: datetime
    time_source: str


@dataclass(frozen=True)
class Stop:
    port: int
    ref: str
    energy_wh: float
    reason: str
    at: datetime
    time_source: str


@dataclass(frozen=True)
class Reading:
    port: int
    ref: str
    power_w: float
    energy_wh: float
    voltage_v: float | None
    current_a: float | None
    temp_c: float | None
    at: datetime
    received_at: datetime
    time_source: str


def _advance(pile: Pile, s: ChargingSession, reading_wh: float) -> None:
    """The session's cumulative counter read `reading_wh`, newer than any reading
    before. Below the last reading: a counter reset, recorded on the session and the
    pile; the segments before it are kept in `meter_base_wh`. The session's energy is
    the sum of its segments and never goes down."""
    last = s.meter_last_wh
    if last is not None and reading_wh < last:
        s.meter_base_wh = (s.meter_base_wh or 0.0) + last
        s.meter_resets = (s.meter_resets or 0) + 1
        pile.meter_resets = (pile.meter_resets or 0) + 1
        log.warning("pile %s session %s: meter reset (%s Wh after %s Wh)", pile.id,
                    s.session_ref, reading_wh, last)
    s.meter_last_wh = reading_wh
    s.energy_wh = max(s.energy_wh or 0.0, (s.meter_base_wh or 0.0) + reading_wh)


def on_start(pile: Pile, ev: Start, cache: dict | None = None) -> ChargingSession:
    """A session began; completes an orphan made by an earlier stop or meter."""
    s = _get(pile, ev.ref, cache)
    if s is None:
        s = _new(pile, ev.port, ev.ref, "active", ev.time_source, cache)
    elif s.started_at is not None:
        return s  # the same start again under another message id: nothing new
    s.port, s.card, s.start_meter_wh, s.started_at = ev.port, ev.card, ev.meter_wh, ev.at
    _mark_time_source(s, ev.time_source)
    if s.status == SessionStatus.ORPHAN:
        s.status = SessionStatus.STOPPED if s.ended_at is not None else SessionStatus.ACTIVE
    if s.ended_at is not None and s.ended_at < s.started_at:
        s.ended_at = s.started_at  # clocks disagree: never a negative duration
    if s.status == SessionStatus.ACTIVE and s.last_meter_at is None:
        s.last_meter_at = ev.at
    return s


def on_stop(pile: Pile, ev: Stop, cache: dict | None = None) -> ChargingSession:
    """A session ended; a stop with no start yet makes an orphan."""
    s = _get(pile, ev.ref, cache)
    if s is None:
        s = _new(pile, ev.port, ev.ref, "orphan", ev.time_source, cache)
    elif s.status == SessionStatus.STOPPED:
        return s  # already ended by the pile
    elif s.settled_at is not None and s.amount_cents is not None:
        # Closed by timeout and already settled: the bill never changes; the
        # difference waits for staff as an adjustment.
        log.warning("pile %s session %s: stop after settlement: adjustment", pile.id, ev.ref)
        settlement.on_late_stop(s, ev.at, ev.energy_wh, ev.reason, utcnow())
        return s
    s.ended_at = ev.at if s.started_at is None else max(ev.at, s.started_at)
    # The stop's reading is the last of the session's counter: a value below the last
    # meter reading means the counter restarted; what was seen before still counts.
    _advance(pile, s, ev.energy_wh)
    s.stop_reason = ev.reason
    _mark_time_source(s, ev.time_source)
    if s.started_at is not None:
        s.status = SessionStatus.STOPPED
    return s


def on_meter(pile: Pile, r: Reading, cache: dict | None = None,
             samples: list | None = None) -> MeterSample | None:
    """Keep the reading; it advances an open session's energy (never backwards).
    With `samples` (the ingest batch's), the reading is appended there as
    (session, row) and written with the batch's others in one INSERT."""
    s = _get(pile, r.ref, cache)
    if s is None:
        s = _new(pile, r.port, r.ref, "orphan", r.time_source, cache)
    if s.settled_at is not None and s.amount_cents is not None:
        # Settled already (closed by timeout): the bill never changes; staff get an adjustment.
        settlement.on_late_meter(s, r.at, r.energy_wh, utcnow())
    elif s.status in OPEN and (s.ended_at is None):
        if s.last_meter_at is None or r.at >= s.last_meter_at or s.meter_last_wh is None:
            _advance(pile, s, r.energy_wh)
            s.last_meter_at = max(r.at, s.last_meter_at or r.at)
            s.last_power_w = r.power_w  # the feeder's load is the sum of these
    if samples is not None:
        samples.append((s, {"pile_id": pile.id, "port": r.port, "ts": r.at,
                            "received_at": r.received_at, "power_w": r.power_w,
                            "energy_wh": r.energy_wh, "voltage_v": r.voltage_v,
                            "current_a": r.current_a, "temp_c": r.temp_c}))
        return None
    if s.id is None:
        db.session.flush()  # the sample needs the session's id
    sample = MeterSample(pile_id=pile.id, port=r.port, session_id=s.id, ts=r.at,
                         received_at=r.received_at, power_w=r.power_w, energy_wh=r.energy_wh,
                         voltage_v=r.voltage_v, current_a=r.current_a, temp_c=r.temp_c)
    db.session.add(sample)
    return sample


def close_stale(now: datetime, inactive_s: int,
                on_closed: Callable[[list[tuple[Pile, ChargingSession]]], object] | None = None
                ) -> int:
    """Close sessions with no news for `inactive_s` seconds (commits): status
    `timeout`, ending at their last meter reading; `on_closed` hears of them before the
    commit (the job: billing.messages tells their holders). Returns how many."""
    cutoff = now - timedelta(seconds=inactive_s)
    rows = db.session.scalars(
        select(ChargingSession).where(ChargingSession.status.in_(OPEN),
                                      ChargingSession.ended_at.is_(None))
    ).all()
    closed = []
    for s in rows:
        last = s.last_meter_at or s.started_at or s.created_at
        if last is None or last >= cutoff:
            continue
        s.status, s.ended_at, s.stop_reason = "timeout", last, "timeout"
        closed.append(s)
    if on_closed is not None and closed:
        on_closed([(s.pile, s) for s in closed])
    db.session.commit()
    return len(closed)


def list_sessions(user: User | None, pile_id: str | None = None, *, limit: int = 100,
                  offset: int = 0, alley_slug: str | None = None) -> list[ChargingSession]:
    """Sessions in the user's scope, newest first, optionally of one pile and/or one
    alley (404 when missing or outside the user's alleys)."""
    stmt = select(ChargingSession).join(Pile, Pile.id == ChargingSession.pile_id)
    if alley_slug is not None:
        from ..devices import alleys

        stmt = stmt.where(Pile.alley_id == alleys.get_alley(user, alley_slug).id)
    if pile_id is not None:
        scope.check_pile(user, db.session.get(Pile, pile_id))
        stmt = stmt.where(ChargingSession.pile_id == pile_id)
    elif user is None:
        raise NotFound("pile.not_found")
    stmt = scope.limit_to_alleys(stmt, user, Pile.alley_id)
    # Newest by when the charge happened (arrival order differs after an outage).
    when = func.coalesce(ChargingSession.started_at, ChargingSession.ended_at,
                         ChargingSession.created_at)
    stmt = stmt.order_by(when.desc(), ChargingSession.id.desc())
    return list(db.session.scalars(stmt.limit(limit).offset(offset)))


def active_by_port(pile_id: str) -> dict[int, ChargingSession]:
    """The pile's active session on each port (the newest, if the pile left several
    open), so a stop or disable can say what it interrupts."""
    out: dict[int, ChargingSession] = {}
    stmt = (select(ChargingSession).where(ChargingSession.pile_id == pile_id,
                                          ChargingSession.status == SessionStatus.ACTIVE)
            .order_by(ChargingSession.id))
    for s in db.session.scalars(stmt):
        out[s.port] = s
    return out


def ask_stop(pile: Pile, s: ChargingSession, why: str, now: datetime) -> Command:
    """The system asks the pile to stop this session (once per session: the balance
    guard, the limits and the risk grade, the power budget): the stop command, and on
    the session when, why and which command, so that what came of it is the pile's
    answer to this very command (endings.stop_asked). No commit."""
    cmd = commands.create(pile, s.port, CommandAction.STOP, now)
    s.guard_stop_at, s.guard_reason, s.guard_command_id = now, why, cmd.id
    return cmd
