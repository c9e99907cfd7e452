"""Session messages to the card's holder, once per event, through their channels
(billing.reminders.queue_to_account: the outbox, retries, quiet hours, their language):

- `session_start` (开始充电): pile, port, the start time in the alley's zone, balance in
  yuan; only while the session is still charging (a start that arrives after its stop
  says nothing: the end does);
- at the end, one of:
  - `failed` (未能充电): it stopped within FAILED_MAX_S (5 minutes) with under
    FAILED_MAX_WH (10 Wh); pricing charges nothing for it (pricing.failed_charge);
  - `full` (已充满): the ending is `full`: please unplug and move the bike;
  - `stopped` (已停止) with the ending in the words of labels.ENDING_LABELS
    (services/charging/endings.py says which).
  A stop for a fault (an alert's cut-off, the pile's own fault stop), over the port's
  power limit or for a dangerous battery is a safety stop: it goes even in the quiet
  hours, and before `failed` (it says why).

Once per event: each is recorded as a Reminder with the key `start:<session id>` or
`end:<session id>` (unique in the database), so a redelivered or late MQTT message, a
start after its stop, a real stop after a timeout never send a second message. A
session whose card has no active holder sends nothing and records nothing.

`on_sessions` is called by the ingest after its batch is written (the sessions have
their ids), inside the batch's transaction (no commit), and by the stale-session job
(through charging.sessions.close_stale's `on_closed`, so charging never imports this).

Other services send a resident one message per event the same way with `tell_once`
(the power-budget queue: kind `queue_start` with {"alley", "pile", "port", "time"} and a
key such as `queue:<entry id>`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from ...extensions import db
from ...models import ChargingSession, Pile, Reminder, ResidentAccount
from ...settings import Paging
from ..charging import endings
from ..devices import alleys
from . import accounts, ledger, pricing, reminders

# Endings that are about safety: never held back by the quiet hours.
SAFETY_ENDINGS = ("fault", "overload", "risk")
ENDED = ("stopped", "timeout")


def _kwh(wh: float | None) -> str:
    return f"{(wh or 0) / 1000:.2f}"


def _event(s: ChargingSession) -> str | None:
    """The event a session's state is news of: `start`, `end` or None."""
    if s.started_at is None:
        return None
    if s.status == "active" and s.ended_at is None:
        return "start"
    if s.status in ENDED and s.ended_at is not None:
        return "end"
    return None


def describe_end(s: ChargingSession) -> tuple[str, str, bool]:
    """(kind, ending code, safety) of an ended session's message."""
    ending = endings.of_session(s) or "remote"
    safety = ending in SAFETY_ENDINGS
    duration = (s.ended_at - s.started_at).total_seconds()
    if safety:
        return "stopped", ending, True
    if pricing.failed_charge(duration, s.energy_wh or 0):
        return "failed", ending, False
    if ending == "full":
        return "full", ending, False
    return "stopped", ending, False


def tell_once(key: str, acc: ResidentAccount, kind: str, data: dict, now: datetime,
              paging: Paging | None = None, *, safety: bool = False) -> Reminder | None:
    """Queue the message of `kind` to the account's channels once for `key` (≤ 96
    characters): None when that key was told already. Flushes; no commit."""
    paging = paging or Paging()
    if db.session.scalar(select(Reminder.id).where(Reminder.key == key)) is not None:
        return None
    r = Reminder(key=key, kind=kind, alley_id=acc.alley_id, resident_id=acc.id, data=data,
                 channels=[], created_at=now)
    db.session.add(r)
    r.channels = reminders.queue_to_account(acc, kind, data, paging.language, now,
                                            safety=safety, ref=key)
    db.session.flush()
    return r


def on_sessions(touched: Iterable[tuple[Pile, ChargingSession]], now: datetime,
                paging: Paging | None = None) -> int:
    """Send the news of each session touched (start or end), once. Returns how many
    messages were recorded. Flushes; no commit."""
    paging = paging or Paging()
    db.session.flush()
    todo: dict[str, tuple[str, Pile, ChargingSession]] = {}
    for pile, s in touched:
        event = _event(s) if s is not None and s.id is not None else None
        if event is not None:
            todo[f"{event}:{s.id}"] = (event, pile, s)
    if not todo:
        return 0
    done = set(db.session.scalars(select(Reminder.key).where(Reminder.key.in_(list(todo)))))
    # The rows are written together at the end: the lookups below need none of them
    # (an autoflush before each would write them one by one).
    with db.session.no_autoflush:
        n = _tell(todo, done, now, paging)
    db.session.flush()
    return n


def _tell(todo: dict, done: set, now: datetime, paging: Paging) -> int:
    n = 0
    holders = accounts.active_holders({(pile.alley_id, s.card) for key, (_e, pile, s)
                                       in todo.items() if key not in done})
    for key, (event, pile, s) in todo.items():
        if key in done:
            continue
        acc = holders.get((pile.alley_id, s.card))
        if acc is None:
            continue
        alley = pile.alley
        zone = alleys.zone(alley, paging.default_timezone)
        data = {"alley": alley.name if alley else "", "pile": pile.label or pile.id,
                "port": s.port, "household": acc.household or f"#{acc.id}"}
        safety = False
        if event == "start":
            kind = "session_start"
            data.update(time=s.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                        balance=reminders.yuan(ledger.balance(acc)))
        else:
            kind, ending, safety = describe_end(s)
            data.update(time=s.ended_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                        reason=ending, energy=_kwh(s.energy_wh))
        r = Reminder(key=key, kind=kind, alley_id=pile.alley_id, resident_id=acc.id,
                     data=data, channels=[], created_at=now)
        db.session.add(r)
        r.channels = reminders.queue_to_account(acc, kind, data, paging.language, now,
                                                safety=safety, ref=key)
        n += 1
    return n
