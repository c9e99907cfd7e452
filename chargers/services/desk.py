"""The staff desk: per alley in the user's scope, what needs someone now (open alerts by
severity, offline piles, ports out of service), most urgent alley first, with today's
takings. Read only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..constants import OPEN_FILTER, AlertStatus, PortState, Severity
from ..models import User, utcnow
from .alerts import lifecycle as alerts
from .alerts.severity import RANK, SEVERITIES
from .billing import exports
from .charging import availability
from .devices import alleys


@dataclass
class AlleyDesk:
    slug: str
    name: str
    ports: int
    free: int
    alerts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    unacknowledged: int = 0
    critical_unacknowledged: int = 0
    worst: str | None = None  # severity of the worst open alert
    offline: list[availability.PileView] = field(default_factory=list)
    out_of_service: list[tuple[str, int | None]] = field(default_factory=list)  # (label, port)
    unsafe: list[availability.PileView] = field(default_factory=list)  # fire alarms
    takings_today_cents: int = 0  # electricity + service fees credited since midnight

    @property
    def open_alerts(self) -> int:
        return sum(self.alerts.values())

    @property
    def calm(self) -> bool:
        return not (self.open_alerts or self.offline or self.out_of_service or self.unsafe)

    def urgency(self) -> tuple:
        """Sort key: a fire first, then unacknowledged critical, critical, major…,
        offline piles, ports out of service."""
        return (-len(self.unsafe), -self.critical_unacknowledged,
                *(-self.alerts[s] for s in SEVERITIES), -self.unacknowledged,
                -len(self.offline), -len(self.out_of_service), self.name)


def desk(user: User, now: datetime | None = None) -> list[AlleyDesk]:
    """The desk rows of the user's alleys, most urgent first."""
    alley_list = alleys.list_alleys(user)
    views = availability.alley_views(alley_list)
    rows = {v.slug: AlleyDesk(v.slug, v.name, v.ports, v.free) for v in views}
    takings = exports.takings_today(alley_list, now or utcnow())
    for a in alley_list:
        if a.slug in rows:
            rows[a.slug].takings_today_cents = takings.get(a.id, 0)
    for v in views:
        row = rows[v.slug]
        for pile in v.piles:
            label = pile.label or pile.id
            if pile.fire:
                row.unsafe.append(pile)
            if not pile.enabled:
                row.out_of_service.append((label, None))
                continue
            if not pile.online:
                row.offline.append(pile)
                continue
            row.out_of_service += [(label, p.port) for p in pile.ports
                                   if p.state == PortState.OUT_OF_SERVICE]
    for a in alerts.list_alerts(user, alerts.AlertFilter(status=OPEN_FILTER), limit=None):
        row = rows.get(a.pile.alley.slug)
        if row is None:
            continue
        row.alerts[a.severity] = row.alerts.get(a.severity, 0) + 1
        row.unacknowledged += a.status == AlertStatus.ACTIVE
        row.critical_unacknowledged += a.status == AlertStatus.ACTIVE and a.severity == Severity.CRITICAL
        if row.worst is None or RANK[a.severity] < RANK[row.worst]:
            row.worst = a.severity
    return sorted(rows.values(), key=AlleyDesk.urgency)
