"""The alley's queue under its power budget: first come, first served.

- `dispatch` (job `budget-queue`): while there is headroom for the first waiting
  resident, and their bike is still plugged in (the port `occupied`), they get a
  `start` with the limits their balance covers now; a resident whose bike has left
  (the port no longer occupied), or who waited past `queue_max_wait_s`, is dropped.
- `on_port_status` (ingest): a port that went `available` (or out of service) drops
  its waiting resident at once; `on_ack`: a `start` the pile refused (`not_occupied`)
  drops them too.
- `on_session_start` (ingest): the session that began on an answer of ours is tied to
  it; one that began from the queue tells its holder through their account's channels.
- `positions` and `estimate_minutes` for the residents' page; `wait_stats` for the
  monthly close.

The ingest calls hold the alley's lock (feeder.lock) before touching the queue, like
admission and dispatch, so the three never wait on each other in opposite orders.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ...constants import AckResult, AuthorizeResult, CommandAction, PortStatus, QueueState
from ...extensions import db
from ...models import Alley, Authorization, ChargingSession, Command, Pile
from ...settings import AlleyDefaults, BudgetRule, Paging
from ..billing import messages
from ..billing.accounts import active_holder
from ..devices import commands, ports
from . import admission, feeder

log = logging.getLogger(__name__)

NOTICE_START = "queue_start"  # billing.messages: "your turn in the queue", once per entry
GONE = (PortStatus.AVAILABLE, PortStatus.UNAVAILABLE, PortStatus.FAULTED)


def waiting(alley_id: int) -> list[Authorization]:
    """The alley's queue, first first."""
    return list(db.session.scalars(select(Authorization).where(
        Authorization.alley_id == alley_id, Authorization.queue_state == QueueState.WAITING)
        .order_by(Authorization.id)))


def _left(port, rec: Authorization) -> bool:
    """The port went free (or out of service) after the resident asked: the bike left.
    A status from before the question (the `occupied` that preceded it may still be on
    its way: an `authorize` is applied ahead of the inbox's line) says nothing."""
    if port.status not in GONE:
        return False
    changed = port.status_ts or port.status_since
    return changed is not None and changed >= rec.asked_at


def _drop(rec: Authorization, why: str, now: datetime) -> None:
    rec.queue_state, rec.drop_reason, rec.left_at = QueueState.DROPPED, why, now
    log.info("queue %s: %s port %s card %s dropped (%s)", rec.alley_id, rec.pile_id, rec.port,
             rec.card, why)


def _renumber(queue: list[Authorization]) -> None:
    for i, rec in enumerate(queue, start=1):
        if rec.position != i:
            rec.position = i


def dispatch(alley: Alley, now: datetime, rule: BudgetRule, language: str = "zh") -> dict:
    """Start the first waiting residents the headroom allows (see the module
    docstring); drop those gone. No commit (the job commits per alley)."""
    feeder.lock(alley.id)
    out = {"started": 0, "dropped": 0}
    queue = waiting(alley.id)
    if not queue:
        return out
    b = feeder.budget(alley, now, rule)
    headroom = b.headroom_w
    left: list[Authorization] = []
    blocked = False
    for rec in queue:
        pile = db.session.get(Pile, rec.pile_id)
        port = ports.port_of(pile, rec.port) if pile is not None else None
        if now - rec.received_at > timedelta(seconds=rule.queue_max_wait_s):
            _drop(rec, "expired", now)
            out["dropped"] += 1
            continue
        if port is None or not pile.enabled or not port.enabled or _left(port, rec):
            _drop(rec, "left", now)
            out["dropped"] += 1
            continue
        if blocked or (headroom is not None and headroom < rec.expected_w):
            blocked = True  # first come, first served: nobody overtakes
            left.append(rec)
            continue
        room = feeder.pile_headroom_w(pile, now, rule)
        if room is not None and room < rec.expected_w:
            left.append(rec)  # its own pile is full: keeps its place, blocks nobody else
            continue
        d = admission.decide_money(pile, rec.port, rec.card, rec.expected_w, now, rule)
        if d.result != AuthorizeResult.ACCEPTED:
            _drop(rec, d.reason.value if d.reason else "refused", now)
            out["dropped"] += 1
            continue
        args: dict = {"card": rec.card, "ref": rec.message_id}
        if d.max_wh is not None:
            args["max_wh"] = d.max_wh
        if d.max_minutes is not None:
            args["max_minutes"] = d.max_minutes
        cmd = commands.create(pile, rec.port, CommandAction.START, now, args=args)
        rec.queue_state, rec.start_command_id = QueueState.STARTED, cmd.id
        rec.admitted_at, rec.left_at = now, now
        rec.max_wh, rec.max_minutes = d.max_wh, d.max_minutes
        if headroom is not None:
            headroom -= rec.expected_w
        out["started"] += 1
    _renumber(left)
    return out


def dispatch_all(now: datetime, rule: BudgetRule, language: str = "zh") -> dict:
    """`dispatch` for every alley with someone waiting, one transaction each. Commits."""
    totals: dict = defaultdict(int)
    alley_ids = sorted(set(db.session.scalars(select(Authorization.alley_id).where(
        Authorization.queue_state == QueueState.WAITING))))
    for alley_id in alley_ids:
        alley = db.session.get(Alley, alley_id)
        for k, v in dispatch(alley, now, rule, language).items():
            totals[k] += v
        db.session.commit()
    return dict(totals)


def after_batch(alley_ids: set, now: datetime, rule: BudgetRule, language: str = "zh") -> int:
    """The ingest's batch saw sessions end or readings come in these alleys: those
    with someone waiting get `dispatch` inside the batch (the `budget-queue` job is the
    fallback). No commit."""
    started = 0
    for alley_id in sorted(alley_ids):  # one order for every worker: no lock cycle
        if not db.session.scalar(select(Authorization.id).where(
                Authorization.alley_id == alley_id,
                Authorization.queue_state == QueueState.WAITING).limit(1)):
            continue
        started += dispatch(db.session.get(Alley, alley_id), now, rule, language)["started"]
    return started


def on_draw_change(pile: Pile, alley_ids: set) -> None:
    """A session on this pile ended or its draw changed (a reading): when its alley
    has a power budget, headroom may have appeared, so the batch's `after_batch` looks
    at that alley's queue."""
    if pile.alley.feeder_limit_w is not None:
        alley_ids.add(pile.alley_id)


def on_port_status(pile: Pile, port_no: int, status: str, at: datetime, now: datetime) -> int:
    """A port of a pile with `authorize` left `occupied` for good (available, out of
    service, faulted) at `at`: its resident who asked before then has left. No
    commit."""
    if status not in GONE or not admission.has_feature(pile):
        return 0
    feeder.lock(pile.alley_id)
    recs = list(db.session.scalars(select(Authorization).where(
        Authorization.pile_id == pile.id, Authorization.port == port_no,
        Authorization.queue_state == QueueState.WAITING, Authorization.asked_at <= at)))
    for rec in recs:
        _drop(rec, "left", now)
    if recs:
        _renumber(waiting(pile.alley_id))
    return len(recs)


def on_ack(pile: Pile, command_id: str, result: str, detail: str | None, now: datetime) -> None:
    """The pile answered a `start`: refused (the bike left: `not_occupied`) drops the
    resident. No commit."""
    if result != AckResult.REJECTED or not admission.has_feature(pile):
        return
    cmd = db.session.get(Command, command_id)
    if cmd is None or cmd.action != CommandAction.START or cmd.pile_id != pile.id:
        return
    feeder.lock(pile.alley_id)
    rec = db.session.scalar(select(Authorization).where(
        Authorization.start_command_id == command_id))
    if rec is not None and rec.queue_state == QueueState.STARTED and rec.session_id is None:
        _drop(rec, (detail or "start_refused")[:32], now)


def on_session_start(pile: Pile, s: ChargingSession, now: datetime, rule: BudgetRule,
                     language: str = "zh") -> Authorization | None:
    """Tie a session that began on a pile with `authorize` to the answer it began on
    (the newest admitted one of its port and card, not yet tied); from the queue, tell
    its holder that their charge began. No commit."""
    if not admission.has_feature(pile) or not s.card or s.started_at is None:
        return None
    feeder.lock(pile.alley_id)
    since = now - timedelta(seconds=max(rule.queue_max_wait_s, 3600))
    rec = db.session.scalar(select(Authorization).where(
        Authorization.pile_id == pile.id, Authorization.port == s.port,
        Authorization.card == s.card, Authorization.admitted_at.is_not(None),
        Authorization.session_id.is_(None), Authorization.received_at >= since)
        .order_by(Authorization.id.desc()).limit(1))
    if rec is None:
        return None
    if s.id is None:
        db.session.flush()
    rec.session_id = s.id
    if rec.queue_state == QueueState.STARTED:
        rec.queue_state = QueueState.CHARGING
        acc = active_holder(pile.alley_id, s.card)
        if acc is not None:
            zone = ZoneInfo(pile.alley.timezone or AlleyDefaults.timezone)
            messages.tell_once(f"queue:{rec.id}", acc, NOTICE_START, {
                "alley": pile.alley.name, "pile": pile.label or pile.id, "port": s.port,
                "time": (s.started_at or now).astimezone(zone).strftime("%Y-%m-%d %H:%M")},
                now, Paging(language=language))
    return rec


def positions(pile_ids: list[str]) -> dict[tuple[str, int], int]:
    """(pile, port) → place in its alley's queue, for ports where a resident waits."""
    if not pile_ids:
        return {}
    return {(r.pile_id, r.port): r.position for r in db.session.scalars(
        select(Authorization).where(Authorization.pile_id.in_(pile_ids),
                                    Authorization.queue_state == QueueState.WAITING))}


def estimate_minutes(position: int, remaining: list[float]) -> int | None:
    """When the resident at `position` may start: the position-th soonest end among
    the alley's charging sessions (their estimated minutes left); None without basis."""
    ends = sorted(m for m in remaining if m is not None)
    if not ends:
        return None
    if position <= len(ends):
        return max(1, int(math.ceil(ends[position - 1])))
    # More waiting than charging: every round of ends frees about as many places again.
    rounds = (position - 1) // len(ends)
    return max(1, int(math.ceil(ends[-1] * rounds + ends[(position - 1) % len(ends)])))


def wait_seconds(rec: Authorization) -> float | None:
    """How long a queued resident waited (until started, or dropped)."""
    if rec.left_at is None:
        return None
    return max(0.0, (rec.left_at - rec.received_at).total_seconds())


def wait_stats(alley_id: int, start: datetime, end: datetime) -> list[dict]:
    """Queue time per resident account over [start, end): count, mean, p90, max (s),
    of the residents who were started from the queue."""
    rows = db.session.scalars(select(Authorization).where(
        Authorization.alley_id == alley_id, Authorization.result == AuthorizeResult.QUEUED,
        Authorization.received_at >= start, Authorization.received_at < end,
        Authorization.queue_state.in_([QueueState.STARTED, QueueState.CHARGING])))
    by: dict[int | None, list[float]] = defaultdict(list)
    for r in rows:
        w = wait_seconds(r)
        if w is not None:
            by[r.account_id].append(w)
    out = []
    for acc_id, waits in by.items():
        waits.sort()
        p90 = waits[min(len(waits) - 1, max(0, math.ceil(0.9 * len(waits)) - 1))]
        out.append({"account_id": acc_id, "count": len(waits),
                    "mean_s": sum(waits) / len(waits), "p90_s": p90, "max_s": waits[-1]})
    return sorted(out, key=lambda d: -d["max_s"])


def places(pile_id: str, remaining_minutes: list) -> dict[int, tuple[int, int | None]]:
    """Port → (place in the alley's queue, estimated minutes until its start) for the
    pile's ports where a resident waits; `remaining_minutes`: the estimated minutes
    left of every session charging in the alley (None: unknown)."""
    return {port: (pos, estimate_minutes(pos, remaining_minutes))
            for (_pile, port), pos in positions([pile_id]).items()}


def month_waits(alley: Alley, month: str) -> list[dict]:
    """Queue time per resident in a local month (YYYY-MM) of the alley: `wait_stats`
    with each account's household and name."""
    from zoneinfo import ZoneInfo

    from ...models import ResidentAccount
    from ..billing.monthly_close import bounds

    start, end = bounds(month, ZoneInfo(alley.timezone))
    rows = wait_stats(alley.id, start, end)
    for r in rows:
        acc = db.session.get(ResidentAccount, r["account_id"]) if r["account_id"] else None
        r["household"] = acc.household if acc else ""
        r["name"] = acc.name if acc else ""
    return rows
