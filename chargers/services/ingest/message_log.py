"""Bookkeeping of the MQTT ingest: the processed-message ledger (idempotency),
rejections kept for staff, running counters, and the choice between the pile's
clock and the arrival time.

The ingest applies messages in batches inside one transaction; an `IngestBatch`
collects counter increments and rejections and writes them at `flush()`. Nothing
here commits: the caller (chargers.ingest.handlers) owns the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from ...extensions import db
from ...models import Alley, IngestCounter, MeterSample, Pile, Port, ProcessedMessage, Rejection, SeqGap, bulk
from ...settings import ClockRule
from .. import scope
from ..devices.ports import port_of

KEEP_REJECTIONS = 1000
EXCERPT_CHARS = 200
# A pile clock reset lands on 2000-01-01; nothing before this is a real time.
EARLIEST_PLAUSIBLE = datetime(2001, 1, 1, tzinfo=UTC)



def choose_time(device_ts: datetime, arrived_at: datetime, rule: ClockRule) -> tuple[datetime, str]:
    """(the time to use, "device" or "server"): the pile's clock when plausible."""
    if (device_ts >= EARLIEST_PLAUSIBLE
            and arrived_at - rule.past <= device_ts <= arrived_at + rule.future):
        return device_ts.astimezone(UTC), "device"
    return arrived_at, "server"


def excerpt(raw: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short printable cut of a payload for logs and the staff page."""
    text = raw[: limit * 4].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text[:limit] + ("…" if len(text) > limit or len(raw) > limit * 4 else "")


def storable(text: str) -> str:
    """`text` as any database keeps it: NUL (refused by PostgreSQL) and lone
    surrogates (not UTF-8) replaced. A rejected topic or detail can hold either."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


class RejectionThrottle:
    """At most `per_minute` kept rejections per (reason, pile) per minute: a pile
    (or a stranger) flooding garbage is still counted in full, but cannot push every
    other rejection out of the newest KEEP_REJECTIONS that staff read. One per
    worker process."""

    def __init__(self, per_minute: int = 20):
        self.per_minute = per_minute
        self._windows: dict[tuple[str, str | None], tuple[datetime, int]] = {}

    def allow(self, reason: str, pile_id: str | None, at: datetime) -> bool:
        key = (reason, pile_id)
        start, n = self._windows.get(key, (at, 0))
        if at - start >= timedelta(minutes=1):
            start, n = at, 0
        self._windows[key] = (start, n + 1)
        if len(self._windows) > 10_000:  # forget strangers' keys now and then
            self._windows = {k: v for k, v in self._windows.items()
                             if at - v[0] < timedelta(minutes=1)}
        return n < self.per_minute


@dataclass
class IngestBatch:
    """Counters and rejections of one batch, written together at flush()."""

    now: datetime
    throttle: RejectionThrottle | None = None
    counts: Counter = field(default_factory=Counter)
    rejected: int = 0
    # (pile, msg id) applied in this batch and not yet visible to a query
    seen: set[tuple[str, str]] = field(default_factory=set)
    # Strong references for the batch: the session's identity map is weak, and
    # reloading a pile for every message would cost a query each.
    piles: dict[str, Pile | None] = field(default_factory=dict)
    alleys: dict[int, Alley] = field(default_factory=dict)  # the piles' alleys, the same way
    # (pile, msg id) pairs looked up by prefetch(), and those the ledger already had
    prefetched: set[tuple[str, str]] = field(default_factory=set)
    known: set[tuple[str, str]] = field(default_factory=set)
    # (pile, session id) → ChargingSession seen or made in this batch
    sessions: dict = field(default_factory=dict)
    # (Pile, ChargingSession) whose start or stop the batch applied: their messages to
    # the card's holder are decided once the batch is written (billing.messages)
    session_news: list = field(default_factory=list)
    # pile id → its seq gaps that late messages may still fill
    gaps: dict = field(default_factory=dict)
    # ledger rows and meter readings of the batch, written by flush() in one INSERT each
    ledger_rows: list = field(default_factory=list)
    samples: list = field(default_factory=list)  # (ChargingSession, row)
    # (pile id, port number) → Port named by the batch's status messages
    ports: dict = field(default_factory=dict)
    # piles whose messages wait for a later batch (prefetch with skip_locked): another
    # worker held them, or (`later`) the batch had taken its share of piles already
    busy: set = field(default_factory=set)
    later: set = field(default_factory=set)
    # prefetch found most of the batch's piles held by another worker (so waited for
    # one, or left at least half for later)
    contended: bool = False
    # alleys under a power budget where a session ended or a reading came in this
    # batch: their queue is looked at once the batch's messages are applied
    budget_alleys: set = field(default_factory=set)
    # what the risk grade reads once a batch (services/safety/limits.BatchReads:
    # the piles' limits and configuration rows, the cards' profiles, the alleys'
    # temperature peers)
    risk_reads: object = None

    def prefetch(self, pile_ids: set[str], msg_keys: set[tuple[str, str]],
                 port_keys: set[tuple[str, int]] = frozenset(), *,
                 skip_locked: bool = False, order: Sequence[str] = (),
                 max_piles: int | None = None) -> None:
        """Load the batch's piles, the ports its status messages name, and which of its
        (pile, msg id) pairs the ledger already holds: a few queries for the batch
        instead of several per message (measured in bench/profile_ingest.py). Only
        the named ports: loading every port of every pile was most of a batch's
        database time once a batch spans hundreds of piles.

        The piles are locked (SELECT … FOR NO KEY UPDATE, in id order; PostgreSQL)
        before the ledger is read: a second worker applying messages of the same pile waits for
        this batch's commit, then sees its ledger rows and its pile state. A pile's
        ports are changed only under its pile's lock. NO KEY UPDATE (the ingest never
        changes a pile's id) still excludes every other pile lock, but not the KEY SHARE
        lock that a foreign-key check takes: with FOR UPDATE, settlement (holding
        finished sessions, checking their pile) and a batch (holding the pile, updating
        one of those sessions) deadlocked.

        With `skip_locked` (PostgreSQL; several workers), see `_lock_share`: piles
        are taken only when free, in `order`, up to `max_piles`; the messages of the
        rest wait for a later batch (`apply` says "deferred")."""
        with db.session.no_autoflush:
            if skip_locked and bulk.is_postgres():
                found = self._lock_share(pile_ids, order, max_piles)
            else:
                found = list(db.session.scalars(
                    select(Pile).where(bulk.one_of(Pile.id, pile_ids)).order_by(Pile.id)
                    .with_for_update(of=Pile, key_share=True)))
            for pile in found:
                self.piles[pile.id] = pile
            if alley_ids := {p.alley_id for p in found} - self.alleys.keys():
                # (a pile's alley is asked at every reading: one query, not one each
                # with an autoflush)
                self.alleys.update((a.id, a) for a in db.session.scalars(
                    select(Alley).where(Alley.id.in_(sorted(alley_ids)))))
            for pile_id in pile_ids - self.busy:
                self.piles.setdefault(pile_id, None)
            port_keys = {k for k in port_keys if self.piles.get(k[0]) is not None}
            if port_keys:
                for port in db.session.scalars(select(Port).where(
                        bulk.pairs_in((Port.pile_id, Port.number), port_keys))):
                    self.ports[(port.pile_id, port.number)] = port
            if msg_keys:
                rows = db.session.execute(
                    select(ProcessedMessage.pile_id, ProcessedMessage.msg_id).where(
                        bulk.pairs_in((ProcessedMessage.pile_id, ProcessedMessage.msg_id),
                                      msg_keys)))
                self.known = {(p, m) for p, m in rows} & msg_keys
            from ..devices.presence import fillable_gaps

            self.gaps.update(fillable_gaps(self.piles.keys()))
        self.prefetched = msg_keys

    def _lock_share(self, pile_ids: set[str], order: Sequence[str],
                    max_piles: int | None) -> list[Pile]:
        """Lock this batch's share of its piles, for two or more workers whose batches
        hold messages of the same piles (Mosquitto hands a shared subscription's
        messages round-robin, so every batch names most piles):

        1. the piles in `order` (the batch's order of first mention: the messages
           left over by the last batch lead it) only when free (SKIP LOCKED), up to
           `max_piles`. With a share of half, two workers mostly hold different
           halves and apply side by side instead of taking turns on every pile
           (measured in bench/ingest_throughput.py; waiting for the left-over
           messages' piles instead made the two wait on each other);
        2. when that leaves nothing, it waits for the first pile instead of spinning.

        Piles held elsewhere go to `busy`; those past the share to `later` as well."""
        rest = list(dict.fromkeys(p for p in [*order, *sorted(pile_ids)] if p in pile_ids))
        got = self._lock_free(rest, max_piles)
        missing = [p for p in rest if p not in {g.id for g in got}]
        exists = set(db.session.scalars(select(Pile.id).where(bulk.one_of(Pile.id, missing)))
                     ) if missing else set()
        if not got and exists:
            got = self._wait_for_first(rest, exists, max_piles)
        self._note_held_elsewhere(rest, exists, {g.id for g in got}, max_piles)
        return got

    def _wait_for_first(self, rest: list[str], exists: set[str],
                        max_piles: int | None) -> list[Pile]:
        """Every pile was held elsewhere: wait for the first one (instead of spinning),
        then take what else is free."""
        self.contended = True
        first = next(p for p in rest if p in exists)
        got = list(db.session.scalars(
            select(Pile).where(Pile.id == first).with_for_update(of=Pile, key_share=True)))
        more = [p for p in rest if p != first]
        return got + self._lock_free(more, None if max_piles is None else max_piles - 1)

    def _note_held_elsewhere(self, rest: list[str], exists: set[str], got_ids: set[str],
                             max_piles: int | None) -> None:
        """Piles held elsewhere go to `busy`, those past the share to `later` as well."""
        waiting = [p for p in rest if p in exists and p not in got_ids]
        if max_piles is not None and got_ids and len(got_ids) >= max_piles:
            # Past the last pile taken, SKIP LOCKED stopped looking: not tried.
            position = {p: i for i, p in enumerate(rest)}
            last = max(position[g] for g in got_ids)
            self.later = {p for p in waiting if position[p] > last}
        self.busy = set(waiting)
        # Most of the batch's piles held elsewhere: the two workers' batches overlap
        # nearly whole (a small fleet), and taking a share pays. A few held (hundreds
        # of piles: batches overlap little) are simply left for the next batch.
        self.contended = self.contended or (
            bool(rest) and 2 * len(self.busy - self.later) >= len(rest))

    def _lock_free(self, ordered: list[str], limit: int | None) -> list[Pile]:
        """SELECT … FOR NO KEY UPDATE SKIP LOCKED of `ordered`'s free piles, first
        first, at most `limit`."""
        if not ordered or limit == 0:
            return []
        query = (select(Pile).where(bulk.one_of(Pile.id, ordered))
                 .order_by(bulk.position_in(Pile.id, ordered))
                 .with_for_update(of=Pile, skip_locked=True, key_share=True))
        if limit is not None:
            query = query.limit(limit)
        return list(db.session.scalars(query))

    def pile(self, pile_id: str) -> Pile | None:
        """The registered pile, or None (looked up once per batch)."""
        if pile_id not in self.piles:
            # No autoflush: flushing the batch's pending rows for a read of a pile
            # would write them once per new pile in the batch.
            with db.session.no_autoflush:
                self.piles[pile_id] = db.session.get(Pile, pile_id,
                                                     with_for_update={"key_share": True})
        return self.piles[pile_id]

    def port(self, pile: Pile, number: int) -> Port | None:
        """The pile's port `number` (prefetched, or through the pile's ports)."""
        found = self.ports.get((pile.id, number))
        return found if found is not None else port_of(pile, number)

    def seq_gaps(self, pile_id: str) -> list[SeqGap]:
        """The pile's fillable seq gaps (loaded once per batch, kept up to date)."""
        if pile_id not in self.gaps:
            from ..devices.presence import fillable_gaps

            self.gaps.update(fillable_gaps([pile_id]))
        return self.gaps[pile_id]

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def reject(self, reason: str, topic: str, pile_id: str | None, detail: str, raw: bytes,
               received_at: datetime) -> bool:
        """Count a rejected message and keep it for staff (unless the throttle says
        enough of its kind were kept this minute); changes nothing else. True when kept."""
        self.count(f"rejected:{reason}")
        if self.throttle is not None and not self.throttle.allow(reason, pile_id, received_at):
            return False
        db.session.add(Rejection(reason=reason, topic=storable(topic)[:255],
                                 pile_id=storable(pile_id) if pile_id else None,
                                 detail=storable(detail)[:1000], payload_excerpt=excerpt(raw),
                                 received_at=received_at))
        self.rejected += 1
        return True

    def is_duplicate(self, pile_id: str, msg_id: str) -> bool:
        """Whether (pile, msg id) was already applied (now or in an earlier batch)."""
        if (pile_id, msg_id) in self.seen:
            return True
        if (pile_id, msg_id) in self.prefetched:
            return (pile_id, msg_id) in self.known
        # No autoflush: this batch's own entries are in `seen`; flushing the batch's
        # pending rows before every lookup would cost more than the lookup.
        with db.session.no_autoflush:
            found = db.session.scalar(
                select(ProcessedMessage.id).where(ProcessedMessage.pile_id == pile_id,
                                                  ProcessedMessage.msg_id == msg_id)
            )
        return found is not None

    def record(self, pile_id: str, msg_id: str, kind: str, received_at: datetime) -> None:
        """Enter (pile, msg id) in the ledger: later copies are duplicates."""
        self.ledger_rows.append({"pile_id": pile_id, "msg_id": msg_id, "kind": kind,
                                 "received_at": received_at})
        self.seen.add((pile_id, msg_id))

    def flush(self) -> None:
        """Write the batch: its changed piles and ports (one UPDATE each), the other
        pending objects (the ORM's flush: sessions, alerts, …), the ledger rows and
        meter readings (one INSERT each; the ledger's unique (pile, msg id) is the
        guard against applying a message twice: a clash fails the batch, which is then
        retried message by message), the counters (one atomic upsert: several workers
        add to the same rows); prune old rejections when some were added."""
        self._write_piles_and_ports()
        db.session.flush()
        if self.ledger_rows:
            bulk.insert_many(ProcessedMessage.__table__, self.ledger_rows)
            self.ledger_rows = []
        if self.samples:
            bulk.insert_many(MeterSample.__table__,
                             [{**row, "session_id": s.id} for s, row in self.samples])
            self.samples = []
        if self.counts:
            add_counts(dict(self.counts), self.now)
        if self.rejected:
            db.session.flush()
            prune_rejections()
        self.counts.clear()
        self.rejected = 0


    def _write_piles_and_ports(self) -> None:
        """The batch's changed piles and ports in one UPDATE each (the rows it locked),
        instead of the ORM's statement per row; their alleys' versions are noted first
        (availability.note_written_columns), as the ORM's flush would."""
        from ..charging.availability import note_written_columns

        for objects in ([p for p in self.piles.values() if p is not None],
                        list(self.ports.values())):
            changed = bulk.changed_columns(objects)
            if changed:
                note_written_columns(db.session, changed)
                bulk.write_changed(changed)


def add_counts(counts: dict[str, int], now: datetime) -> None:
    """counter += n for each key, created at 0 when missing: one INSERT … ON CONFLICT
    DO UPDATE (PostgreSQL and SQLite), rows in key order so that two workers never
    deadlock."""
    bulk.upsert_add(IngestCounter.__table__,
                    [{"key": k, "count": n, "last_at": now} for k, n in counts.items()],
                    key="key", add=["count"], set_=["last_at"])
    # The ORM's copies (if any were loaded) are stale now.
    for obj in [o for o in db.session.identity_map.values() if isinstance(o, IngestCounter)]:
        db.session.expire(obj)


def prune_rejections(keep: int = KEEP_REJECTIONS) -> int:
    """Keep only the newest `keep` rejections; returns how many were deleted."""
    newest = db.session.scalar(select(func.max(Rejection.id)))
    if newest is None or newest <= keep:
        return 0
    return db.session.execute(delete(Rejection).where(Rejection.id <= newest - keep)).rowcount


def prune_ledger(now: datetime, retention_days: int) -> int:
    """Forget processed-message ids older than the retention window (commits).

    A pile resends an id only within seconds to hours (lost PUBACK, outage queue),
    so days of memory are enough to drop every real duplicate.
    """
    cutoff = now - timedelta(days=retention_days)
    deleted = db.session.execute(
        delete(ProcessedMessage).where(ProcessedMessage.received_at < cutoff)
    ).rowcount
    prune_rejections()
    db.session.commit()
    return deleted


# -- reading, for staff -----------------------------------------------------------


def list_rejections(user, *, reason: str | None = None, limit: int = 100,
                    offset: int = 0) -> list[Rejection]:
    """Latest rejections, newest first; staff limited to their alleys see only
    rejections of their piles (admins also see unknown piles and bad topics)."""
    stmt = select(Rejection).order_by(Rejection.received_at.desc(), Rejection.id.desc())
    stmt = scope.limit_by_pile(stmt, user, Rejection.pile_id)
    if reason:
        stmt = stmt.where(Rejection.reason == reason)
    return list(db.session.scalars(stmt.limit(limit).offset(offset)))


def rejection_counts(user) -> dict[str, int]:
    """Rejections by reason: running totals for admins; for staff limited to some
    alleys, the kept rejections of their piles."""
    if scope.visible_alley_ids(user) is None:
        return {key.partition(":")[2]: n for key, n in ingest_counts().items()
                if key.startswith("rejected:")}
    stmt = select(Rejection.reason, func.count()).group_by(Rejection.reason)
    return dict(db.session.execute(scope.limit_by_pile(stmt, user, Rejection.pile_id)).all())


def ingest_counts() -> dict[str, int]:
    """Every running counter of the ingest."""
    return {r.key: r.count for r in db.session.scalars(select(IngestCounter))}


def list_seq_gaps(user, *, limit: int = 100, offset: int = 0) -> list[SeqGap]:
    """Recorded seq gaps (possible data loss), newest first, within the user's scope."""
    stmt = select(SeqGap).order_by(SeqGap.detected_at.desc(), SeqGap.id.desc())
    stmt = scope.limit_by_pile(stmt, user, SeqGap.pile_id)
    return list(db.session.scalars(stmt.limit(limit).offset(offset)))
