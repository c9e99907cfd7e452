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

from ...constants import GapStatus
from ...extensions import db
from ...models import Pile, SeqGap, bulk
from ...settings import AlertRules
from ..alerts import cutoff
from ..alerts import lifecycle as alerts
from . import piles

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
            cutoff.on_pile_back(pile, now, rules.cutoff)
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
         seq: int | None, at: datetime, gaps: list[SeqGap] | None = None,
         now: datetime | None = None, device_time: bool = False,
         rules: AlertRules) -> None:
    """A (re)boot: hardware facts, and a new `seq` baseline. The pile's gaps still
    waiting can no longer be told apart from its new numbers: what is missing from
    them is lost (a `data_loss` alert), and they are closed.

    A boot older by the pile's clock (`device_time`) than messages already applied
    since the last baseline arrived late (several workers): those messages started
    the new sequence already (`check_seq`), so it only fills its own number."""
    now = now or at
    gaps = gaps if gaps is not None else []
    if device_time and pile.last_seq_at is not None and at < pile.last_seq_at:
        _hardware(pile, model, firmware, ports, max_power_w)
        if pile.last_boot_at is None or at > pile.last_boot_at:
            pile.last_boot_at = at
        if seq is not None:
            check_seq(pile, seq, now, gaps, rules=rules)
        return
    _hardware(pile, model, firmware, ports, max_power_w)
    # A pile boots after every (re)connect: a cut-off it has not confirmed goes again.
    cutoff.on_pile_back(pile, now, rules.cutoff)
    if seq is not None:
        _fill(pile, seq, now, gaps, rules)  # a first contact's gap waited for this boot's 0
    pile.last_boot_at = at
    pile.last_seq = seq
    pile.last_seq_at = at if device_time else None
    _close_gaps(pile, gaps, now, rules)


def _hardware(pile: Pile, model: str, firmware: str, ports: int, max_power_w: int) -> None:
    pile.model, pile.firmware, pile.max_power_w = model, firmware, max_power_w
    if ports != pile.port_count:
        # The hardware is the truth about how many ports there are.
        log.warning("pile %s boots with %d ports, registered with %d", pile.id, ports,
                    pile.port_count)
        pile.extra = {**(pile.extra or {}), "registered_ports": pile.port_count}
        piles.resize_ports(pile, ports)


def _close_gaps(pile: Pile, gaps: list[SeqGap], now: datetime, rules: AlertRules) -> None:
    """A new sequence: the old one's open gaps are lost (alert), all are closed."""
    missing = sum(_remaining(g) for g in gaps if g.status == GapStatus.OPEN)
    for g in gaps:
        g.status, g.resolved_at = "closed", now
    gaps.clear()
    if missing:
        alerts.on_data_loss(pile, missing, now, rules=rules)


# A pile first heard (no baseline) with a `seq` up to this: 0…seq-1 may still arrive.
# Above, the backend joins a running sequence and takes it as the baseline.
FIRST_CONTACT_GAP = 1000

# Gaps whose missing numbers may still arrive: `open` ones, and `lost` ones (alerted).
FILLABLE = (GapStatus.OPEN, GapStatus.LOST)


def _remaining(gap: SeqGap) -> int:
    return gap.missing - len((gap.extra or {}).get("arrived", ()))


def check_seq(pile: Pile, seq: int | None, now: datetime, gaps: list[SeqGap],
              at: datetime | None = None, *, rules: AlertRules) -> bool:
    """Whether a message with this `seq` is new since the pile's boot. `at`: the
    message's time when it is the pile's own clock (else None).

    A higher `seq` advances the baseline; a jump records an `open` SeqGap (added to
    `gaps`, the pile's fillable gaps), which is possible data loss only if the missing
    numbers have not arrived within the window (`expire_seq_gaps`). A lower `seq` is a
    late message when it is one of a gap's missing numbers not seen yet (applied, and
    the gap filled once all arrived, clearing a `data_loss` alert it raised). A lower
    `seq` with a newer pile clock than anything since the baseline means the pile
    rebooted and its `boot` (seq 0) is still on the way: a new sequence starts, with
    0…seq-1 waiting. Any other lower or equal `seq` is a replay (False)."""
    if seq is None:
        return True
    last = pile.last_seq
    if last is None and seq <= FIRST_CONTACT_GAP:
        # Never heard since a boot: a low number is the start of a sequence whose
        # first messages (the boot among them) may still be on the way.
        last = pile.last_seq = -1
    if last is None or seq > last:
        if last is not None and seq > last + 1:
            gap = SeqGap(pile_id=pile.id, expected_seq=last + 1, got_seq=seq,
                         missing=seq - last - 1, detected_at=now, status=GapStatus.OPEN, extra={})
            db.session.add(gap)
            gaps.append(gap)
            log.info("pile %s: seq jumped from %d to %d (%d messages not arrived yet)",
                     pile.id, last, seq, seq - last - 1)
        pile.last_seq = seq
        _newest(pile, at)
        return True
    if _fill(pile, seq, now, gaps, rules):
        _newest(pile, at)
        return True
    if at is not None and pile.last_seq_at is not None and at > pile.last_seq_at:
        log.info("pile %s: seq %d after %d, newer by its clock: rebooted, boot on the way",
                 pile.id, seq, last)
        _close_gaps(pile, gaps, now, rules)
        pile.last_seq, pile.last_seq_at = -1, None  # the boot's 0 is still to come
        return check_seq(pile, seq, now, gaps, at, rules=rules)
    return False


def _newest(pile: Pile, at: datetime | None) -> None:
    if at is not None and (pile.last_seq_at is None or at > pile.last_seq_at):
        pile.last_seq_at = at


def _fill(pile: Pile, seq: int, now: datetime, gaps: list[SeqGap], rules: AlertRules) -> bool:
    """`seq` is one of a gap's missing numbers not seen yet: note it (True)."""
    for gap in gaps:
        if gap.status in FILLABLE and gap.expected_seq <= seq < gap.got_seq:
            arrived = list((gap.extra or {}).get("arrived", ()))
            if seq in arrived:
                return False
            arrived.append(seq)
            gap.extra = {**(gap.extra or {}), "arrived": sorted(arrived)}
            if len(arrived) >= gap.missing:
                was_lost = gap.status == GapStatus.LOST
                gap.status, gap.resolved_at = GapStatus.FILLED, now
                if was_lost and not any(g.status == GapStatus.LOST for g in gaps):
                    alerts.on_data_recovered(pile, now, rules=rules)
            return True
    return False


def fillable_gaps(pile_ids) -> dict[str, list[SeqGap]]:
    """The piles' gaps that late messages may still fill, by pile."""
    out: dict[str, list[SeqGap]] = {p: [] for p in pile_ids}
    if out:
        with db.session.no_autoflush:
            for gap in db.session.scalars(
                    select(SeqGap).where(bulk.one_of(SeqGap.pile_id, out),
                                        SeqGap.status.in_(FILLABLE))
                    .order_by(SeqGap.id)):
                out[gap.pile_id].append(gap)
    return out


def expire_seq_gaps(now: datetime, window_s: int, rules: AlertRules) -> int:
    """Gaps still open past the window are possible data loss: `lost`, and a
    `data_loss` alert for their pile (commits). Returns how many. Locks the piles,
    as the ingest does, so a late message filling a gap at the same moment waits."""
    cutoff = now - timedelta(seconds=window_s)
    due = select(SeqGap.pile_id).where(SeqGap.status == GapStatus.OPEN, SeqGap.detected_at <= cutoff)
    pile_ids = sorted(set(db.session.scalars(due)))
    n = 0
    for pile in db.session.scalars(select(Pile).where(Pile.id.in_(pile_ids))
                                   .order_by(Pile.id).with_for_update(key_share=True)):
        gaps = db.session.scalars(
            select(SeqGap).where(SeqGap.pile_id == pile.id, SeqGap.status == GapStatus.OPEN,
                                 SeqGap.detected_at <= cutoff)
            .execution_options(populate_existing=True)).all()
        missing = 0
        for gap in gaps:
            gap.status, gap.resolved_at = GapStatus.LOST, now
            missing += _remaining(gap)
            log.warning("pile %s: seq %d..%d: %d messages did not arrive within %d s",
                        pile.id, gap.expected_seq, gap.got_seq - 1, _remaining(gap), window_s)
        if missing:
            alerts.on_data_loss(pile, missing, now, rules=rules)
        n += len(gaps)
    db.session.commit()
    return n


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
