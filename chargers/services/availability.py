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

from sqlalchemy import select

from ..extensions import db
from ..models import Alert, Alley, Pile, Port
from ..protocol.codes import FIRE_CODES
from .alerts import OPEN
from .severity import NOT_HARDWARE

# Resident-facing states, in the order a legend lists them.
STATES = ("free", "in_use", "finished", "fault", "offline", "out_of_service")


@dataclass
class PortView:
    port: int
    status: str  # the pile's last status for the port
    state: str  # one of STATES
    free: bool
    since: datetime | None
    # Filled for ports in use by the door that wants it (services/estimate.py).
    estimate: object | None = None


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

    def get(self, pile_id: str, default=None):
        return self.ports.get(pile_id, default)


def _faults(pile_ids: list[str]) -> _Faults:
    """Open hardware fault alerts of these piles: which ports, and which are fire."""
    out = _Faults(defaultdict(set), defaultdict(list))
    if not pile_ids:
        return out
    rows = db.session.execute(
        select(Alert.pile_id, Alert.port, Alert.code, Alert.raised_at).where(
            Alert.pile_id.in_(pile_ids),
            Alert.status.in_(OPEN),
            Alert.code.not_in(NOT_HARDWARE),
        )
    )
    for pile_id, port, code, raised_at in rows:
        out.ports[pile_id].add(port)
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
        if port.status == "faulted" and port.error in FIRE_CODES and \
                (port.number, port.error) not in found:
            found.append((port.number, port.error))
    return sorted(found, key=lambda f: (f[0] or 0, f[1]))


def port_state(pile: Pile, port: Port, faulty_ports: set[int | None],
               fire: bool = False) -> str:
    """The one word a resident needs for this port; the worst condition wins, and a
    fire alarm anywhere on the pile is the worst of all."""
    if fire:
        return "fault"
    if not pile.enabled or not port.enabled:
        return "out_of_service"
    if not pile.online:
        return "offline"
    if port.status == "faulted" or None in faulty_ports or port.number in faulty_ports:
        return "fault"
    if port.status == "unavailable":
        return "out_of_service"
    if port.status in ("occupied", "charging"):
        return "in_use"
    if port.status == "finishing":
        return "finished"
    return "free"


def _pile_view(pile: Pile, faults: _Faults) -> PileView:
    faulty = faults.get(pile.id, set())
    fire = fire_alarms(pile, faults)
    ports = []
    for port in pile.ports:
        state = port_state(pile, port, faulty, bool(fire))
        # "since" is the later of the port's status change and the pile's online
        # change: an offline port has been offline since the pile went away.
        since = port.status_since
        if state == "offline" or (pile.online_since and since and pile.online_since > since):
            since = pile.online_since or since
        if fire:  # every port is unsafe since the pile's first fire alarm
            since = faults.fire_since.get(pile.id) or min(
                (p.status_since for p in pile.ports
                 if p.status == "faulted" and p.error in FIRE_CODES and p.status_since),
                default=since)
        ports.append(PortView(port.number, port.status, state, state == "free", since))
    return PileView(pile.id, pile.label, pile.location_note, pile.online, pile.enabled, ports,
                    fire)


def alley_view(alley: Alley) -> AlleyView:
    """Every pile and port of the alley with its state."""
    faults = _faults([p.id for p in alley.piles])
    return AlleyView(alley.slug, alley.name, [_pile_view(p, faults) for p in alley.piles])


def pile_view(pile: Pile) -> PileView:
    """One pile's ports with their state."""
    return _pile_view(pile, _faults([pile.id]))


def alley_views(alleys: list[Alley]) -> list[AlleyView]:
    """Views of several alleys, sharing one fault query."""
    faults = _faults([p.id for a in alleys for p in a.piles])
    return [AlleyView(a.slug, a.name, [_pile_view(p, faults) for p in a.piles]) for a in alleys]
