"""Is a pile there? Online/offline from the retained `online` topic and the last
will, liveness from heartbeats (three missed = offline), boot information, and
the pile's `seq` (gaps = possible data loss, going back = replay).

Functions taking a Pile are called by the ingest inside its batch: they change
objects and flush at most, never commit. `sweep_offline` is a job and commits.
Those that may raise or clear an alert take the `settings.AlertRules` to do it by.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Pile, SeqGap
from ..settings import AlertRules
from . import alerts, piles

log = logging.getLogger(__name__)
MISSED_HEARTBEATS = 3


def set_online(pile: Pile, online: bool, now: datetime, *, rules: AlertRules,
               reason: str = "will") -> None:
    """Record the pile's online state; the alerts hear of real changes only."""
    if online:
        pile.offline_reason = None
        if not pile.online:
            pile.online, pile.online_since = True, now
            alerts.on_pile_online(pile, now, rules=rules)
        return
    if pile.online:
        pile.online, pile.online_since = False, now
        pile.offline_reason = reason
        alerts.on_pile_offline(pile, now)
    elif reason == "will":
        # Already offline (say, by missed heartbeats): the broker's word is stronger.
        pile.offline_reason = "will"


def online_message(pile: Pile, online: bool, arrived_at: datetime, *, retained: bool,
                   rules: AlertRules) -> None:
    """The pile's `online` topic said `1` or `0`. A retained `1` replayed on our
    (re)subscribe for a pile we found silent says nothing new: it stays offline."""
    if retained and online and not pile.online and pile.offline_reason == "heartbeat":
        return
    seen(pile, arrived_at)
    set_online(pile, online, arrived_at, rules=rules)


def heartbeat(pile: Pile, rssi: int | None, at: datetime, now: datetime,
              heartbeat_s: int, rules: AlertRules) -> None:
    """A heartbeat: keep the signal strength, and the pile is alive."""
    if rssi is not None:
        pile.extra = {**(pile.extra or {}), "rssi": rssi}
    alive(pile, at, now, heartbeat_s, rules)


def seen(pile: Pile, arrived_at: datetime) -> None:
    """The pile said something: remember when we last heard it."""
    if pile.last_seen_at is None or arrived_at > pile.last_seen_at:
        pile.last_seen_at = arrived_at


def alive(pile: Pile, at: datetime, now: datetime, heartbeat_s: int,
          rules: AlertRules) -> None:
    """A heartbeat or boot: revive a pile that was marked offline for silence, when
    the message is fresh. After a last will only `online 1` brings it back, so an
    old message processed late cannot make a dead pile look alive."""
    fresh = at >= now - timedelta(seconds=MISSED_HEARTBEATS * heartbeat_s)
    if not pile.online and pile.offline_reason != "will" and fresh:
        set_online(pile, True, now, rules=rules)


def boot(pile: Pile, *, model: str, firmware: str, ports: int, max_power_w: int,
         seq: int | None, at: datetime) -> None:
    """A (re)boot: hardware facts, and a new `seq` baseline."""
    pile.model, pile.firmware, pile.max_power_w = model, firmware, max_power_w
    pile.last_boot_at = at
    pile.last_seq = seq
    if ports != pile.port_count:
        # The hardware is the truth about how many ports there are.
        log.warning("pile %s boots with %d ports, registered with %d", pile.id, ports,
                    pile.port_count)
        pile.extra = {**(pile.extra or {}), "registered_ports": pile.port_count}
        piles.resize_ports(pile, ports)


def check_seq(pile: Pile, seq: int | None, now: datetime, rules: AlertRules) -> bool:
    """False when `seq` is at or below the last one seen since boot (a replay);
    otherwise advance the baseline, recording a SeqGap (and a staff alert) for a jump."""
    if seq is None:
        return True
    last = pile.last_seq
    if last is not None and seq <= last:
        return False
    if last is not None and seq > last + 1:
        db.session.add(SeqGap(pile_id=pile.id, expected_seq=last + 1, got_seq=seq,
                              missing=seq - last - 1, detected_at=now))
        log.warning("pile %s: seq jumped from %d to %d (%d messages possibly lost)",
                    pile.id, last, seq, seq - last - 1)
        alerts.on_data_loss(pile, seq - last - 1, now, rules=rules)
    pile.last_seq = seq
    return True


def sweep_offline(now: datetime, heartbeat_s: int, rules: AlertRules) -> list[str]:
    """Mark offline every online pile silent for three heartbeat intervals (commits).
    Returns the ids marked."""
    cutoff = now - timedelta(seconds=MISSED_HEARTBEATS * heartbeat_s)
    stale = db.session.scalars(
        select(Pile).where(Pile.online.is_(True),
                           (Pile.last_seen_at.is_(None)) | (Pile.last_seen_at < cutoff))
    ).all()
    for pile in stale:
        set_online(pile, False, now, reason="heartbeat", rules=rules)
    db.session.commit()
    return [p.id for p in stale]
