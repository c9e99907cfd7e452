"""What residents see: each port's state, free counts per pile and alley.

A port is free when its last status is `available`, its pile is online, both are
enabled, and neither the port nor its pile has an active fault (contract rule).

Fire first: a smoke or over-temperature alarm (FIRE_CODES: an open alert, or a port
reported `faulted` with such an error) on any port makes the whole pile unsafe: every
one of its ports shows as a fault, none counts as free, and the pile carries `fire`
(the codes and ports alarming) for the pages' warning banner.

Read only: nothing here writes or commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history

from ...constants import PortState, PortStatus
from ...extensions import db
from ...models import Alert, Alley, Pile, Port
from ...ordering import pile_key
from ...protocol.codes import FIRE_CODES
from ..alerts.lifecycle import OPEN
from ..alerts.severity import NOT_HARDWARE
from . import endings

# Resident-facing states, in the order a legend lists them.
STATES = tuple(PortState)


@dataclass
class PortView:
    port: int
    status: str  # the pile's last status for the port
    state: str  # one of STATES
    free: bool
    since: datetime | None
    # Filled for ports in use by the door that wants it (services/charging/estimate.py).
    estimate: object | None = None
    # A finished port: why its last session ended (services/charging/endings.py ENDINGS; None:
    # not known). Only `full` may be shown as "full".
    ended: str | None = None


@dataclass
class PileView:
    id: str
    label: str
    location_note: str
    online: bool
    enabled: bool
    ports: list[PortView]
    # Fire alarms on this pile: (port or None for the whole pile, code). Non-empty =
    # the whole pile is unsafe.
    fire: list[tuple[int | None, str]] = field(default_factory=list)
    # The cut-off of its open critical alerts as the pile confirmed it (the worst of
    # them: unconfirmed, pending, confirmed; "none" without one): what residents are told.
    cutoff: str = "none"

    @property
    def free(self) -> int:
        return sum(p.free for p in self.ports)

    @property
    def unsafe(self) -> bool:
        return bool(self.fire)


@dataclass
class AlleyView:
    slug: str
    name: str
    piles: list[PileView]

    @property
    def ports(self) -> int:
        return sum(len(p.ports) for p in self.piles)

    @property
    def free(self) -> int:
        return sum(p.free for p in self.piles)

    @property
    def unsafe_piles(self) -> list[PileView]:
        """Piles with a fire alarm, for the alley's warning banner."""
        return [p for p in self.piles if p.fire]

    def counts(self) -> dict[str, int]:
        """How many ports are in each resident-facing state."""
        out = dict.fromkeys(STATES, 0)
        for pile in self.piles:
            for port in pile.ports:
                out[port.state] += 1
        return out


@dataclass
class _Faults:
    ports: dict[str, set[int | None]]  # pile id → ports with an open fault (None = pile)
    fire: dict[str, list[tuple[int | None, str]]]  # pile id → fire alarms
    fire_since: dict[str, datetime] = field(default_factory=dict)  # pile id → first alarm
    cutoff: dict[str, str] = field(default_factory=dict)  # pile id → worst cut-off state

    def get(self, pile_id: str, default=None):
        return self.ports.get(pile_id, default)


def _faults(pile_ids: list[str]) -> _Faults:
    """Open hardware fault alerts of these piles: which ports, and which are fire."""
    out = _Faults(defaultdict(set), defaultdict(list))
    if not pile_ids:
        return out
    rows = db.session.execute(
        select(Alert.pile_id, Alert.port, Alert.code, Alert.raised_at, Alert.cutoff).where(
            Alert.pile_id.in_(pile_ids),
            Alert.status.in_(OPEN),
            Alert.code.not_in(NOT_HARDWARE),
        )
    )
    for pile_id, port, code, raised_at, cutoff in rows:
        out.ports[pile_id].add(port)
        if CUTOFF_RANK.get(cutoff, 0) > CUTOFF_RANK.get(out.cutoff.get(pile_id, "none"), 0):
            out.cutoff[pile_id] = cutoff
        if code in FIRE_CODES:
            out.fire[pile_id].append((port, code))
            if pile_id not in out.fire_since or raised_at < out.fire_since[pile_id]:
                out.fire_since[pile_id] = raised_at
    return out


def fire_alarms(pile: Pile, faults: _Faults) -> list[tuple[int | None, str]]:
    """The pile's fire alarms: open fire alerts, and ports the pile itself reports
    `faulted` with a fire code (the status may arrive before the fault message)."""
    found = list(faults.fire.get(pile.id, []))
    for port in pile.ports:
        if port.status == PortStatus.FAULTED and port.error in FIRE_CODES and \
                (port.number, port.error) not in found:
            found.append((port.number, port.error))
    return sorted(found, key=lambda f: (f[0] or 0, f[1]))


def port_state(pile: Pile, port: Port, faulty_ports: set[int | None],
               fire: bool = False) -> str:
    """The one word a resident needs for this port; the worst condition wins, and a
    fire alarm anywhere on the pile is the worst of all."""
    if fire:
        return PortState.FAULT
    if not pile.enabled or not port.enabled:
        return PortState.OUT_OF_SERVICE
    if not pile.online:
        return PortState.OFFLINE
    if port.status == PortStatus.FAULTED or None in faulty_ports or port.number in faulty_ports:
        return PortState.FAULT
    if port.status == PortStatus.UNAVAILABLE:
        return PortState.OUT_OF_SERVICE
    if port.status in (PortStatus.OCCUPIED, PortStatus.CHARGING):
        return PortState.IN_USE
    if port.status == PortStatus.FINISHING:
        return PortState.FINISHED
    return PortState.FREE


def _pile_view(pile: Pile, faults: _Faults) -> PileView:
    faulty = faults.get(pile.id, set())
    fire = fire_alarms(pile, faults)
    ports = []
    for port in pile.ports:
        state = port_state(pile, port, faulty, bool(fire))
        # "since" is the later of the port's status change and the pile's online
        # change: an offline port has been offline since the pile went away.
        since = port.status_since
        if state == PortState.OFFLINE or (pile.online_since and since and pile.online_since > since):
            since = pile.online_since or since
        if fire:  # every port is unsafe since the pile's first fire alarm
            since = faults.fire_since.get(pile.id) or min(
                (p.status_since for p in pile.ports
                 if p.status == PortStatus.FAULTED and p.error in FIRE_CODES and p.status_since),
                default=since)
        ports.append(PortView(port.number, port.status, state, state == PortState.FREE, since))
    return PileView(pile.id, pile.label, pile.location_note, pile.online, pile.enabled, ports,
                    fire, faults.cutoff.get(pile.id, "none"))


@dataclass
class _PileRow:
    """What a view needs of a pile and its ports, read as plain rows (not ORM objects:
    hydrating ~200 of them was most of a view's cost, and the view of a busy alley is
    rebuilt after every ingest batch). Same attribute names as Pile, so `_pile_view`
    takes either."""
    id: str
    label: str
    location_note: str
    online: bool
    enabled: bool
    online_since: datetime | None
    alley_id: int
    ports: list = field(default_factory=list)


def _piles_of(alley_ids: list[int]) -> dict[int, list[_PileRow]]:
    """alley id → its piles (by label) with their ports (by number): two queries."""
    out: dict[int, list[_PileRow]] = {a: [] for a in alley_ids}
    if not alley_ids:
        return out
    piles: dict[str, _PileRow] = {}
    for row in db.session.execute(
            select(Pile.id, Pile.label, Pile.location_note, Pile.online, Pile.enabled,
                   Pile.online_since, Pile.alley_id)
            .where(Pile.alley_id.in_(alley_ids)).order_by(Pile.label)):
        pile = piles[row.id] = _PileRow(*row)
        out[pile.alley_id].append(pile)
    for rows in out.values():
        rows.sort(key=pile_key)  # 1号桩, 2号桩 … 10号桩, as on every pile list
    for port in db.session.execute(
            select(Port.pile_id, Port.number, Port.status, Port.error, Port.enabled,
                   Port.status_since)
            .where(Port.pile_id.in_(select(Pile.id).where(Pile.alley_id.in_(alley_ids))))
            .order_by(Port.pile_id, Port.number)):
        piles[port.pile_id].ports.append(port)
    return out


def _fill_endings(piles: list[PileView]) -> None:
    """Say on each finished port why its last session ended (one query, and only
    when some port is finished)."""
    finished = [(pile.id, p) for pile in piles for p in pile.ports if p.state == PortState.FINISHED]
    if not finished:
        return
    found = endings.last_by_port((pile_id, p.port) for pile_id, p in finished)
    for pile_id, p in finished:
        p.ended = found.get((pile_id, p.port))


def alley_view(alley: Alley) -> AlleyView:
    """Every pile and port of the alley with its state."""
    return alley_views([alley])[0]


def pile_view(pile: Pile) -> PileView:
    """One pile's ports with their state."""
    view = _pile_view(pile, _faults([pile.id]))
    _fill_endings([view])
    return view


def alley_views(alleys: list[Alley]) -> list[AlleyView]:
    """Views of several alleys, sharing one fault query."""
    piles = _piles_of([a.id for a in alleys])
    faults = _faults([p.id for rows in piles.values() for p in rows])
    views = [AlleyView(a.slug, a.name, [_pile_view(p, faults) for p in piles[a.id]])
             for a in alleys]
    _fill_endings([p for v in views for p in v.piles])
    return views


# -- the alley's state version: what a cached view of it is keyed by ------------------

# Attributes that change what residents see; a change of any bumps the alley's version.
# Which cut-off state a pile shows when several alerts cut it: the least sure wins.
CUTOFF_RANK = {"none": 0, "confirmed": 1, "pending": 2, "unconfirmed": 3}

VISIBLE = {
    Alley: ("name", "street", "community", "address", "timezone"),
    Pile: ("alley_id", "label", "location_note", "port_count", "enabled", "online",
           "online_since"),
    Port: ("number", "status", "status_since", "error", "enabled"),
    Alert: ("status", "port", "code", "severity", "pile_id", "cutoff"),
}


NOTIFY_CHANNEL = "chargers_alley_state"


def _changed(obj, names) -> bool:
    # get_history per name: `inspect(obj).attrs` builds a dict of every attribute on
    # each access (it was a tenth of the ingest's flush).
    return any(get_history(obj, n).has_changes() for n in names)


_PENDING = "chargers.alleys_to_bump"  # session.info key: (alley ids, pile ids)


def _note_state_changes(session, _flush_context) -> None:
    """after_flush: note every alley whose visible state this flush changed (a port's
    status, a pile going offline, an alert raised or cleared, staff edits). The
    versions move once, just before the commit (`_bump_state_versions`): the alley row
    is then locked only for the commit, not from the batch's first flush on (two
    ingest workers of one alley waited on it). Heartbeats and meter readings change
    nothing visible and note nothing."""
    dirty = session.dirty  # a set computed on each access: once, not per object
    note_state_changes(session, [*session.new, *dirty, *session.deleted], dirty)


def note_state_changes(session, objects, dirty) -> None:
    """Note the alleys whose visible state these objects' pending changes touch (for
    `dirty` ones: only if a VISIBLE attribute changed)."""
    alley_ids, pile_ids = session.info.setdefault(_PENDING, (set(), set()))
    for obj in objects:
        names = VISIBLE.get(type(obj))
        if names is None:
            continue
        if obj in dirty and not _changed(obj, names):
            continue
        if isinstance(obj, Alley):
            if obj.id is not None:
                alley_ids.add(obj.id)
        elif isinstance(obj, Pile):
            if obj.alley_id is not None:
                alley_ids.add(obj.alley_id)
            old = get_history(obj, "alley_id").deleted
            alley_ids.update(a for a in old or () if a is not None)
        elif obj.pile_id is not None:
            pile_ids.add(obj.pile_id)
    if not alley_ids and not pile_ids:
        del session.info[_PENDING]


def note_written_columns(session, changed) -> None:
    """The same for writes that go around the ORM's flush (models/bulk.write_changed),
    called before them with its (object, changed column names): those names are
    known already, so no attribute's history is asked again (on a batch of status
    messages that was a tenth of the ingest's time)."""
    note_state_changes(session, [obj for obj, names in changed
                                 if not set(VISIBLE.get(type(obj), ())).isdisjoint(names)], ())


def _bump_state_versions(session) -> None:
    """before_commit: +1 on the state version of every alley noted since the last
    commit, in the same transaction (+ NOTIFY on PostgreSQL)."""
    session.flush()  # the last changes are noted too
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    alley_ids, pile_ids = pending
    alleys, piles = Alley.__table__, Pile.__table__
    which = alleys.c.id.in_(sorted(alley_ids))
    if pile_ids:
        which = or_(which, alleys.c.id.in_(
            select(piles.c.alley_id).where(piles.c.id.in_(sorted(pile_ids)))))
    conn = session.connection()
    bumped = conn.execute(
        update(alleys).where(which).values(state_version=alleys.c.state_version + 1)
        .returning(alleys.c.id, alleys.c.state_version)).all()
    if bumped and conn.dialect.name == "postgresql":
        # Delivered at commit to every web process listening (web/viewcache.py).
        # The schema first: a channel is the whole database's, and alley ids repeat
        # across schemas (the tests' throwaway ones).
        conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, func.concat(
            func.current_schema(), "|", ",".join(f"{i}:{v}" for i, v in bumped)))))
    for alley_id, _ in bumped:
        obj = session.identity_map.get(session.identity_key(Alley, alley_id))
        if obj is not None and obj not in session.dirty:
            session.expire(obj, ["state_version"])


def _forget_state_changes(session, *_args) -> None:
    """after_rollback: what was noted did not happen."""
    session.info.pop(_PENDING, None)


def install_state_versions() -> None:
    """Hook the version bump onto every ORM session (once per process)."""
    for name, fn in (("after_flush", _note_state_changes),
                     ("before_commit", _bump_state_versions),
                     ("after_rollback", _forget_state_changes)):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


def alley_state(slug: str) -> tuple[int, int] | None:
    """(alley id, state version) of the alley, or None: one cheap query, to decide
    whether a cached view of it is still good."""
    row = db.session.execute(
        select(Alley.id, Alley.state_version).where(Alley.slug == slug)).first()
    return (row[0], row[1] or 0) if row else None
