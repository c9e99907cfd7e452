"""Dispatch of device messages: (topic, payload bytes, arrival time) in, service
calls out. Testable without a broker: `process(messages)` in an app context.

Every message ends as exactly one outcome: `accepted`, `duplicate`, `ignored` (our
own `cmd` topic) or `rejected:<reason>`; or, when the caller allows it, `deferred`
(another worker held the pile's lock) or `deferred:later` (the batch had taken its
share of piles): nothing was done, and the caller hands the message in again with a
later batch. A rejection is counted and kept for staff
and changes nothing else. Reasons: bad_topic, unknown_kind, sender_mismatch,
unknown_pile, retained, oversized, malformed, invalid, port_out_of_range, stale, replay,
error.

A message whose pile time is older than DEDUP_RETENTION_DAYS is `stale`: its id may
already be forgotten by the dedup ledger, so a redelivery could no longer be told from
a new message. A pile whose clock was reset (a `ts` before 2001) is not old, its clock
is wrong: arrival time is used for it as before.

A message delivered with the retain flag is old news (the broker replays what it
stored when we (re)subscribe): on every topic but `online` it is rejected as
`retained` and changes nothing, whatever its payload says.

`process` applies a batch in one transaction and commits; if that fails it
applies the messages one by one, so a message that breaks a handler (a bug) is
rejected as `error` without holding up the rest. When the database itself does
not answer it raises DatabaseUnavailable: the caller must not acknowledge the
messages, and tries again later.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exc as sa_exc

from .. import settings as app_settings
from ..constants import PortStatus
from ..extensions import db
from ..models import Pile, utcnow
from ..protocol import codes, payloads, topics
from ..services.alerts import cutoff
from ..services.alerts import lifecycle as alerts
from ..services.billing import messages as session_messages
from ..services.budget import admission
from ..services.budget import queue as budget_queue
from ..services.charging import sessions
from ..services.devices import config as pile_config
from ..services.devices import ports, presence
from ..services.ingest import message_log
from ..services.safety import limits as safety
from ..services.safety import risk
from ..settings import IngestRule

log = logging.getLogger(__name__)

DEFERRED = "deferred"  # another worker held the pile: it is busy with the same piles
DEFERRED_LATER = "deferred:later"  # the batch had taken its share of piles already
YIELDED = "yielded"  # not applied: the batch ended early for an urgent message (see process)


@dataclass(frozen=True)
class Incoming:
    """One MQTT message as the client received it."""

    topic: str
    payload: bytes
    arrived_at: datetime
    # Who sent it, when the broker says so (an MQTT 5 user property); else None.
    sender: str | None = None
    # A retained message replayed because we (re)subscribed: old news, not an event.
    retained: bool = False


class Rejected(Exception):
    def __init__(self, reason: str, detail: str, pile_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.pile_id = reason, detail, pile_id


class DatabaseUnavailable(RuntimeError):
    """The database did not answer; nothing was applied, nothing may be acked."""


def _db_down(exc: BaseException) -> bool:
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


# -- one message --------------------------------------------------------------------


def apply(msg: Incoming, batch: message_log.IngestBatch, settings: IngestRule) -> str:
    """Apply one message within the current transaction; return its outcome.
    Raises only on unexpected errors (the caller rolls back)."""
    try:
        outcome = _apply(msg, batch, settings)
    except Rejected as r:
        kept = batch.reject(r.reason, msg.topic, r.pile_id, r.detail, msg.payload, msg.arrived_at)
        # The log follows the throttle of kept rejections, so a flood cannot fill it.
        log.log(logging.INFO if kept else logging.DEBUG, "rejected %s on %s: %s", r.reason,
                msg.topic[:120], r.detail[:200])
        return f"rejected:{r.reason}"
    return outcome


def _apply(msg: Incoming, batch: message_log.IngestBatch, settings: IngestRule) -> str:
    try:
        topic = topics.parse(msg.topic, settings.prefix)
    except topics.TopicError as exc:
        raise Rejected(exc.reason, str(exc)) from None
    if topic.kind == codes.COMMAND_KIND:
        return "ignored"  # our own commands to the piles
    _check_sender(msg, topic)
    if topic.pile_id in batch.busy:
        return DEFERRED_LATER if topic.pile_id in batch.later else DEFERRED
    pile = batch.pile(topic.pile_id)
    if pile is None:
        raise Rejected("unknown_pile", "pile not registered", topic.pile_id)
    if topic.kind == "online":
        return _online(msg, pile, batch, settings)
    data = _decode(topic.kind, msg, pile, settings)
    if batch.is_duplicate(pile.id, data.id):
        batch.count("duplicate")
        return "duplicate"
    at, source = message_log.choose_time(data.ts, msg.arrived_at, settings.clock)
    if topic.kind != "boot" and not presence.check_seq(
            pile, data.seq, batch.now, batch.seq_gaps(pile.id),
            at if source == "device" else None, rules=settings.alerts):
        raise Rejected("replay", f"seq {data.seq} already seen since boot", pile.id)

    _dispatch(topic.kind, pile, data, at, source, msg, batch, settings)
    presence.seen(pile, msg.arrived_at)
    batch.record(pile.id, data.id, topic.kind, msg.arrived_at)
    batch.count(f"accepted:{topic.kind}")
    return "accepted"


def _check_sender(msg: Incoming, topic) -> None:
    """Retained device messages are old news; a message on another pile's topic is
    refused where the broker tells us who sent it."""
    if msg.retained and topic.kind != "online":
        raise Rejected("retained", "delivered with the retain flag: old news", topic.pile_id)
    if msg.sender is not None and msg.sender != topic.pile_id:
        raise Rejected("sender_mismatch", f"sent by {msg.sender[:64]!r}", topic.pile_id)


def _online(msg: Incoming, pile: Pile, batch: message_log.IngestBatch,
            settings: IngestRule) -> str:
    try:
        online = payloads.decode_online(msg.payload)
    except payloads.PayloadError as exc:
        raise Rejected(exc.reason, exc.detail, pile.id) from None
    presence.online_message(pile, online, msg.arrived_at, retained=msg.retained,
                            rules=settings.alerts)
    batch.count("accepted:online")
    return "accepted"


def _decode(kind: str, msg: Incoming, pile: Pile, settings: IngestRule):
    """The payload as the protocol says, for a port the pile has, and not older than
    the dedup memory (a redelivery of it could pass as new)."""
    try:
        data = payloads.decode(kind, msg.payload, settings.max_bytes)
    except payloads.PayloadError as exc:
        raise Rejected(exc.reason, exc.detail, pile.id) from None
    port_no = getattr(data, "port", None)
    if port_no is not None and port_no > pile.port_count:
        raise Rejected("port_out_of_range", f"port {port_no} of {pile.port_count}", pile.id)
    if (data.ts >= message_log.EARLIEST_PLAUSIBLE
            and msg.arrived_at - data.ts > timedelta(days=settings.dedup_days)):
        raise Rejected("stale", f"ts {data.ts.isoformat()} older than "
                       f"{settings.dedup_days} days", pile.id)
    return data


def _dispatch(kind: str, pile: Pile, data, at: datetime, source: str, msg: Incoming,
              batch: message_log.IngestBatch, settings: IngestRule) -> None:
    now = batch.now
    if kind == "boot":
        presence.boot(pile, model=data.model, firmware=data.firmware, ports=data.ports,
                      max_power_w=data.max_power_w, seq=data.seq, at=at,
                      gaps=batch.seq_gaps(pile.id), now=now, device_time=source == "device",
                      rules=settings.alerts)
        presence.alive(pile, at, msg.arrived_at, settings.heartbeat_s, settings.alerts)
        pile_config.on_boot(pile, data.known_features, settings.limits, now)
        if batch.risk_reads is not None:  # (set by _prefetch)
            batch.risk_reads.config_changed(pile.id)
    elif kind == "heartbeat":
        presence.heartbeat(pile, data.rssi, at, msg.arrived_at, settings.heartbeat_s,
                           settings.alerts)
    elif kind == "status":
        port = batch.port(pile, data.port)
        was_charging = port is not None and port.status == PortStatus.CHARGING
        if not ports.apply_status(port, data.status, data.error, at):
            batch.count("stale:status")
        else:
            if was_charging and port.status != PortStatus.CHARGING:
                cutoff.on_pile_changed(pile, now)  # a cut-off waiting for this port to stop
            budget_queue.on_port_status(pile, data.port, port.status, at, now)
    elif kind == "session":
        if data.event == "start":
            s = sessions.on_start(pile, sessions.Start(data.port, data.session, data.card,
                                                       data.meter_wh, at, source), batch.sessions)
            budget_queue.on_session_start(pile, s, now, settings.budget, settings.language)
        else:
            s = sessions.on_stop(pile, sessions.Stop(data.port, data.session, data.energy_wh,
                                                     data.reason, at, source), batch.sessions)
            budget_queue.on_draw_change(pile, batch.budget_alleys)  # headroom may appear
        batch.session_news.append((pile, s))
    elif kind == "meter":
        sessions.on_meter(pile, sessions.Reading(
            data.port, data.session, data.power_w, data.energy_wh, data.voltage_v,
            data.current_a, data.temp_c, at, msg.arrived_at, source), batch.sessions,
            batch.samples)
        s = batch.sessions.get((pile.id, data.session))
        budget_queue.on_draw_change(pile, batch.budget_alleys)  # a taper frees headroom too
        if s is not None:
            safety.on_reading(pile, s, risk.Point(at, data.power_w, data.energy_wh, data.temp_c,
                                                  data.power_min_w, data.power_max_w),
                              now, settings.limits, settings.alerts, batch.risk_reads)
    elif kind == "config":
        pile_config.on_report(pile, data.version, data.settings.model_dump(exclude_none=True), at)
    elif kind == "fault":
        alerts.record_fault(pile, port=data.port, code=data.code, active=data.active,
                            value=data.value, detail=data.detail, at=at, time_source=source,
                            received_at=msg.arrived_at, now=now, rules=settings.alerts)
    elif kind == "ack":
        cutoff.on_ack(pile, data.cmd, data.result, data.detail, now)
        budget_queue.on_ack(pile, data.cmd, data.result, data.detail, now)
    elif kind == "authorize":
        late = source == "device" and (msg.arrived_at - at).total_seconds() > \
            admission.ANSWER_WAIT_S
        admission.on_authorize(pile, data.port, data.card, data.id, at, msg.arrived_at, now,
                               settings.budget, late=late)
    else:  # pragma: no cover - topics.parse admits only the kinds above
        raise Rejected("unknown_kind", kind, pile.id)


# -- a batch ------------------------------------------------------------------------


def _throttle() -> message_log.RejectionThrottle:
    """The app's (so: the worker process's) rejection throttle."""
    from flask import current_app

    return current_app.extensions.setdefault("chargers.rejection_throttle",
                                             message_log.RejectionThrottle())


def _prefetch(batch: message_log.IngestBatch, messages: Sequence[Incoming], settings: IngestRule,
              skip_locked: bool = False, pile_share: float | None = None) -> None:
    """Tell the batch which piles, message ids and charging sessions are coming, so it
    loads them at once (one query each for the batch). With `skip_locked`, the batch
    takes at most `pile_share` of its piles (see IngestBatch._lock_share)."""
    pile_ids: dict[str, None] = {}  # in order of first mention
    keys: set[tuple[str, str]] = set()
    refs: set[tuple[str, str]] = set()
    status_ports: set[tuple[str, int]] = set()
    cards: set[str] = set()  # of the sessions its messages start (the grade's baseline)
    for m in messages:
        try:
            topic = topics.parse(m.topic, settings.prefix)
        except topics.TopicError:
            continue
        pile_ids[topic.pile_id] = None
        seen = payloads.peek(m.payload, settings.max_bytes)
        if seen.id is not None:
            keys.add((topic.pile_id, seen.id))
        if seen.session is not None:
            refs.add((topic.pile_id, seen.session))
        if topic.kind == "status" and seen.port is not None:
            status_ports.add((topic.pile_id, seen.port))
        if topic.kind == "session" and seen.card is not None:
            cards.add(seen.card)
    max_piles = None if pile_share is None else max(1, math.ceil(len(pile_ids) * pile_share))
    batch.prefetch(set(pile_ids), keys, status_ports, skip_locked=skip_locked,
                   order=list(pile_ids), max_piles=max_piles)
    sessions.prefetch(refs, batch.sessions)
    cutoff.watch(pile_ids)
    batch.risk_reads = safety.BatchReads.of_piles(pile_ids, batch.alleys, cards,
                                                  batch.sessions.values())


def _run(messages: Sequence[Incoming], settings: IngestRule, now: datetime,
         may_defer: bool = False, pile_share: float | None = None,
         report: dict | None = None, yield_to: Callable[[], bool] | None = None) -> list[str]:
    batch = message_log.IngestBatch(now=now, throttle=_throttle())
    try:
        _prefetch(batch, messages, settings, skip_locked=may_defer, pile_share=pile_share)
        outcomes = []
        for m in messages:
            outcomes.append(apply(m, batch, settings))
            if _gave_way(outcomes, messages, yield_to):
                break
        # Headroom may have appeared: the first of a queue start now, not at the next tick.
        budget_queue.after_batch(batch.budget_alleys, now, settings.budget, settings.language)
        batch.flush()
        session_messages.on_sessions(batch.session_news, now, settings.alerts.paging)
        db.session.commit()
    finally:
        cutoff.unwatch()
    if report is not None:
        report["contended"] = batch.contended
    return outcomes


def process(messages: Sequence[Incoming], settings: IngestRule | None = None,
            now: datetime | None = None, *, may_defer: bool = False,
            pile_share: float | None = None, report: dict | None = None,
            yield_to: Callable[[], bool] | None = None) -> list[str]:
    """Apply `messages` and commit; one outcome per message, in order. With
    `may_defer`, messages of piles another worker has locked come back `deferred`
    (see IngestBatch.prefetch) instead of waiting for that worker's commit; with
    `pile_share` (0.5: half) the batch takes at most that share of its piles (those
    of its first messages first), the messages of the others come back
    `deferred:later`. `report["contended"]` says whether the batch
    found most of its piles held by another worker. `yield_to` is asked after each
    message: when it says yes, the batch commits what it has applied and the rest come
    back `yielded`, unapplied (the worker's inbox holds an `authorize`, and a pile
    waits for its answer).

    Needs an app context. Raises DatabaseUnavailable when the database does not
    answer (nothing is committed then)."""
    from flask import current_app

    settings = settings or app_settings.ingest(current_app.config)
    now = now or utcnow()
    if not messages:
        return []
    try:
        return _run(messages, settings, now, may_defer, pile_share, report, yield_to)
    except Exception as exc:  # noqa: BLE001 - sorted out below
        db.session.rollback()
        if _db_down(exc):
            raise DatabaseUnavailable(str(exc)[:200]) from exc
        if len(messages) == 1:
            return [_poison(messages[0], settings, now, exc)]
        log.warning("batch of %d failed (%s); applying one by one", len(messages), exc)
    outcomes = []
    for m in messages:
        try:
            outcomes.extend(_run([m], settings, now))
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            if _db_down(exc):
                raise DatabaseUnavailable(str(exc)[:200]) from exc
            outcomes.append(_poison(m, settings, now, exc))
        # One commit a message is slow: an urgent message need not wait for the rest
        # (each round applies one at least, so a poison message is reached).
        if _gave_way(outcomes, messages, yield_to):
            break
    return outcomes


def _gave_way(outcomes: list[str], messages: Sequence[Incoming],
              yield_to: Callable[[], bool] | None) -> bool:
    """Asked after each message applied: when an urgent message waits, the rest are
    marked `yielded` (unapplied) in `outcomes`, and the batch ends."""
    if yield_to is None or len(outcomes) >= len(messages) or not yield_to():
        return False
    outcomes += [YIELDED] * (len(messages) - len(outcomes))
    return True


def _poison(msg: Incoming, settings: IngestRule, now: datetime, exc: BaseException) -> str:
    """A message whose handling raised: keep it as an `error` rejection, alone."""
    log.error("handling %s failed: %r; payload %s", msg.topic[:120], exc,
              message_log.excerpt(msg.payload), exc_info=exc)
    pile_id = None
    try:
        pile_id = topics.parse(msg.topic, settings.prefix).pile_id
    except topics.TopicError:
        pass
    try:
        batch = message_log.IngestBatch(now=now)
        batch.reject("error", msg.topic, pile_id, f"{type(exc).__name__}: {exc}"[:500],
                     msg.payload, msg.arrived_at)
        batch.flush()
        db.session.commit()
    except Exception as exc2:
        db.session.rollback()
        if _db_down(exc2):
            raise DatabaseUnavailable(str(exc2)[:200]) from exc2
        raise
    return "rejected:error"
