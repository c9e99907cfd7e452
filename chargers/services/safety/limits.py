"""The backend's side of the limits and the risk grade, for every pile whatever its
firmware: each meter reading of a charging session is folded into its risk state
(risk.step); the session's grade and reasons are kept on it; and when the verdict says
so the session is stopped through the command service (services/devices/commands:
dispatched by the worker, ack tracked), once, with the reason recorded as the
session's `guard_reason` (a LimitStop: overload, too_long, full, risk) beside the
balance guard's, so services/charging/endings.py tells why it ended.

- over the port's limit for two readings: stop `overload` and an `overload` alert;
- past the longest session: stop `too_long` (also by the `risk-review` job, for a
  session whose pile went quiet about power);
- under 充满自停 power for the hold time: stop `full`;
- graded high while charging: stop `risk`, a `battery_risk_high` alert for staff and,
  once per session, the card's holder told through their account's channels
  ("电池或充电器可能异常，请停止使用并检修"); graded mid: a `battery_risk` alert, no stop.

Called by the ingest inside its batch (`on_reading`: no commit) and by the job
(`check_running`: commits).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ...constants import LimitStop, RiskGrade
from ...extensions import db
from ...models import CardProfile, ChargingSession, Pile, ResidentAccount
from ...settings import AlertRules, LimitRule, RiskRule
from ..alerts import lifecycle as alerts
from ..billing import accounts, messages
from ..charging import sessions
from ..devices import alleys
from ..devices import config as pile_config
from . import cards, risk

log = logging.getLogger(__name__)

ALERT_HIGH = "battery_risk_high"
ALERT_MID = "battery_risk"
NOTICE = "battery_risk"  # the reminder kind that tells the holder


def limits_for(pile: Pile, rule: LimitRule) -> risk.Limits:
    """The limits in force for the pile (desired configuration, else the defaults)."""
    return _risk_limits(pile_config.limits(pile, rule), rule)


def _risk_limits(lim: pile_config.Limits, rule: LimitRule) -> risk.Limits:
    return risk.Limits(lim.max_power_w, lim.full_stop_power_w, lim.full_stop_hold_s,
                       lim.max_session_s, rule.overload_readings)


@dataclass
class BatchReads:
    """What the grade reads once per ingest batch rather than at every reading: the
    batch's piles' configuration rows (one query), each pile's limits, the profiles of
    the cards its messages name (one query), and each alley's recent charges (the
    temperature peers, `peer_rise`). The ingest keeps one per batch
    (`IngestBatch.risk_reads`)."""

    configs: dict = field(default_factory=dict)  # pile id → PileConfig (absent: none)
    limits: dict = field(default_factory=dict)  # pile id → risk.Limits
    peers: dict = field(default_factory=dict)  # alley id → its recent charges' rows
    # (alley id, card) → its CardProfile, or None when it has none; a pair not in it
    # was not read
    profiles: dict = field(default_factory=dict)

    @classmethod
    def of_piles(cls, pile_ids, alley_ids=(), cards=(), sessions=()) -> BatchReads:
        """For a batch on these piles (in these alleys): the profiles of `cards` (those
        of the sessions its messages start) and of the cards of `sessions` whose grade
        has not begun (`needs_baseline`)."""
        reads = cls(configs=pile_config.of_piles(list(pile_ids)))
        cards = set(cards) | {s.card for s in sessions
                              if s is not None and s.card and needs_baseline(s)}
        if cards and alley_ids:
            reads.profiles = {(a, c): None for a in alley_ids for c in cards}
            with db.session.no_autoflush:
                reads.profiles.update(((p.alley_id, p.card), p) for p in db.session.scalars(
                    select(CardProfile).where(CardProfile.alley_id.in_(sorted(alley_ids)),
                                              CardProfile.card.in_(sorted(cards)))))
        return reads

    def limits_of(self, pile: Pile, rule: LimitRule) -> risk.Limits:
        lim = self.limits.get(pile.id)
        if lim is None:
            lim = self.limits[pile.id] = _risk_limits(
                pile_config.limits(pile, rule, self.configs.get(pile.id)), rule)
        return lim

    def config_changed(self, pile_id: str) -> None:
        """The pile's configuration may have moved (a boot): read its limits again."""
        self.limits.pop(pile_id, None)

    def profile(self, alley_id: int, card: str) -> CardProfile | None:
        if (alley_id, card) in self.profiles:
            return self.profiles[(alley_id, card)]
        return _profile(alley_id, card)


def needs_baseline(s: ChargingSession) -> bool:
    """Whether the session's grade has not read its card's usual charge yet (it does at
    its first graded reading, and keeps it in its state)."""
    return "cb" not in (s.risk_state or {})


def _profile(alley_id: int, card: str) -> CardProfile | None:
    with db.session.no_autoflush:
        return db.session.get(CardProfile, (alley_id, card))


def baseline(pile: Pile, card: str | None, port: int | None = None,
             power_w: float | None = None, at: datetime | None = None,
             rule: LimitRule | None = None, reads: BatchReads | None = None) -> risk.Baseline:
    """The card's usual charge in the pile's alley (None parts: no history), and how
    much the alley's other ports warmed in their recent charges at a similar power.
    Read without an autoflush, from the batch's `reads` where it has them: profiles
    change only in the `risk-review` job, and the peers' rises as of the last batch are
    as good as this one's (a flush here cost the ingest 3 ms a session start)."""
    with db.session.no_autoflush:
        peer = (peer_rise(pile, port, power_w, at, rule,
                          reads.peers if reads is not None else None)
                if at is not None else None)
    prof = None
    if card:
        prof = reads.profile(pile.alley_id, card) if reads is not None else _profile(
            pile.alley_id, card)
    return cards.baseline_of(prof, rule.risk if rule is not None else RiskRule(), peer)


# The peers of a session's temperature: the alley's other ports' charges begun in the
# last PEER_WINDOW before it (so under the same weather), at most PEER_SAMPLE of the
# newest, with at least PEER_READINGS readings; "similar power" is within a factor
# PEER_POWER_FACTOR of this session's first reading. Fewer than PEER_MIN: no peers.
PEER_WINDOW = timedelta(hours=12)
PEER_SAMPLE = 40
PEER_READINGS = 10
PEER_POWER_FACTOR = 2.0
PEER_MIN = 2


def peer_rise(pile: Pile, port: int | None, power_w: float | None, at: datetime,
              rule: LimitRule | None, memo: dict | None = None) -> float | None:
    """The median temperature rise (°C over each one's first reading) of the alley's
    other ports' recent charges at a similar power; None with fewer than PEER_MIN.
    `memo` (alley id → the alley's recent charges; `BatchReads.peers`), so
    sessions that start in one batch read them once (a charge begun within the batch
    has too few readings to be a peer anyway)."""
    idle = rule.risk.idle_w if rule is not None else 40.0
    rows = memo.get(pile.alley_id) if memo is not None else None
    if rows is None:
        rows = db.session.execute(
            select(ChargingSession.pile_id, ChargingSession.port, ChargingSession.risk_state)
            .join(Pile, Pile.id == ChargingSession.pile_id)
            .where(Pile.alley_id == pile.alley_id,
                   ChargingSession.started_at >= at - PEER_WINDOW,
                   ChargingSession.started_at <= at, ChargingSession.risk_state.is_not(None))
            .order_by(ChargingSession.started_at.desc()).limit(PEER_SAMPLE)).all()
        if memo is not None:
            memo[pile.alley_id] = rows
    rises = []
    for pile_id, other_port, st in rows:
        if (pile_id, other_port) == (pile.id, port) or not st or st.get("n", 0) < PEER_READINGS:
            continue
        if "t0" not in st or "tm" not in st:
            continue
        bulk = st.get("bk") or 0.0
        if power_w is not None and power_w >= idle and bulk:
            if not power_w / PEER_POWER_FACTOR <= bulk <= power_w * PEER_POWER_FACTOR:
                continue
        rises.append(st["tm"] - st["t0"])
    if len(rises) < PEER_MIN:
        return None
    rises.sort()
    mid = len(rises) // 2
    return rises[mid] if len(rises) % 2 else (rises[mid - 1] + rises[mid]) / 2


def on_reading(pile: Pile, s: ChargingSession, p: risk.Point, now: datetime,
               rule: LimitRule, alert_rules: AlertRules,
               reads: BatchReads | None = None) -> risk.Verdict | None:
    """Fold one reading of a charging session into its grade and act on the verdict.
    Readings of a session that is not charging (ended, orphan) are not graded.
    `reads`: the ingest batch's (`BatchReads`). No commit."""
    if s.status != "active" or s.ended_at is not None:
        return None
    st = dict(s.risk_state or {})
    if needs_baseline(s):  # the card's usual charge and the peers', read once per session
        b = baseline(pile, s.card, s.port, p.power_w, p.at, rule, reads)
        st["cb"] = [b.bulk_w, b.energy_wh, b.sessions, b.peer_rise_c, b.full_wh]
    base = risk.Baseline(*(st.get("cb") or [None, None, 0, None]))
    limits = reads.limits_of(pile, rule) if reads is not None else limits_for(pile, rule)
    st, v = risk.step(st, p, s.started_at, limits, base, rule.risk)
    s.risk_state = st
    if s.risk != v.grade or (s.risk_reasons or []) != sorted(v.reasons):
        s.risk, s.risk_reasons = v.grade, sorted(v.reasons)
    act(pile, s, v, p.power_w, p.at, now, rule, alert_rules)
    return v


def act(pile: Pile, s: ChargingSession, v: risk.Verdict, power_w: float | None,
        at: datetime, now: datetime, rule: LimitRule, alert_rules: AlertRules) -> None:
    """Stop, alert and tell the holder as the verdict says, each once. No commit."""
    if v.stop is not None and s.guard_stop_at is None:
        stop(pile, s, v.stop, now)
        if v.stop == LimitStop.OVERLOAD:
            alerts.on_fault(pile, s.port, "overload", True, power_w, None, at, now,
                            rules=alert_rules, data=_about(s, limit=LimitStop.OVERLOAD))
    rank = {None: 0, RiskGrade.MID: 1, RiskGrade.HIGH: 2}
    if s.risk_alerted == RiskGrade.MID and v.grade == RiskGrade.LOW:
        # Its mid (no_taper) was withdrawn: the charge tapered to full. The alert about
        # it goes too, and a new reason would alert again.
        alerts.withdraw_about_session(pile, s.port, ALERT_MID, s.id, _about(s, tapered=True),
                                      at, now, alert_rules)
        s.risk_alerted = None
    if rank.get(v.grade, 0) > rank.get(s.risk_alerted, 0):
        code = ALERT_HIGH if v.grade == RiskGrade.HIGH else ALERT_MID
        alerts.on_fault(pile, s.port, code, True, None, None, at, now, rules=alert_rules,
                        data=_about(s, reasons=sorted(v.reasons)))
        if s.risk_alerted == RiskGrade.MID:
            # The same charge is now high: its high alert carries it on, and staff are
            # not left two open alerts about one charge.
            alerts.withdraw_about_session(pile, s.port, ALERT_MID, s.id,
                                          _about(s, superseded=ALERT_HIGH), at, now,
                                          alert_rules)
        s.risk_alerted = v.grade
    if v.grade == RiskGrade.HIGH and s.risk_notified_at is None:
        tell_holder(pile, s, at, now, rule)


def _about(s: ChargingSession, **what) -> dict:
    """An alert's data naming the session it is about (services/alerts/lifecycle.py
    `about_session`). A session begun in this ingest batch is flushed first, for its id
    (raising the alert flushes the batch's pending rows anyway)."""
    if s.id is None:
        db.session.flush()
    return {"session": s.id, "session_ref": s.session_ref, **what}


def stop(pile: Pile, s: ChargingSession, why: str, now: datetime) -> None:
    """Ask the pile to stop the session (once), recording why. No commit."""
    sessions.ask_stop(pile, s, why, now)
    log.info("pile %s port %s session %s: stop asked (%s)", pile.id, s.port, s.session_ref, why)


def holder(pile: Pile, card: str | None) -> ResidentAccount | None:
    """The active account holding `card` in the pile's alley."""
    return accounts.active_holder(pile.alley_id, card)


def tell_holder(pile: Pile, s: ChargingSession, at: datetime, now: datetime,
                rule: LimitRule) -> bool:
    """Tell the card's holder, once per session, through their account's channels, what
    was seen (the reasons, at `at`: the reading's time) and what to do; kept as the
    account's reminder `risk:<id>`.
    Marked as told even when the card has no holder or channels (nobody to tell)."""
    s.risk_notified_at = now
    acc = holder(pile, s.card)
    if acc is None:
        return False
    if s.id is None:  # (its alert has flushed it already, but the key needs the id)
        db.session.flush()
    zone = alleys.zone(pile.alley, rule.paging.default_timezone)
    data = {"alley": pile.alley.name if pile.alley else "", "pile": pile.label or pile.id,
            "port": s.port, "time": at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "reasons": sorted(s.risk_reasons or [])}
    r = messages.tell_once(f"risk:{s.id}", acc, NOTICE, data, now, rule.paging, safety=True)
    return bool(r is not None and r.channels)


def check_running(now: datetime, rule: LimitRule, alert_rules: AlertRules) -> int:
    """Stop running sessions past their longest time even when no reading comes (the
    pile went quiet about power). Commits. Returns how many were asked to stop."""
    n = 0
    oldest = now - timedelta(seconds=60)
    rows = db.session.execute(
        select(ChargingSession, Pile).join(Pile, Pile.id == ChargingSession.pile_id)
        .where(ChargingSession.status == "active", ChargingSession.ended_at.is_(None),
               ChargingSession.started_at.is_not(None), ChargingSession.started_at < oldest,
               ChargingSession.guard_stop_at.is_(None))).all()
    for s, pile in rows:
        lim = limits_for(pile, rule)
        if (now - s.started_at).total_seconds() < lim.max_session_s:
            continue
        reasons = dict((s.risk_state or {}).get("r") or {})
        risk._raise(reasons, "too_long", RiskGrade.MID)
        s.risk_state = {**(s.risk_state or {}), "r": reasons}
        v = risk.Verdict(grade=risk.grade_of(reasons), reasons=reasons, stop=LimitStop.TOO_LONG)
        s.risk, s.risk_reasons = v.grade, sorted(reasons)
        act(pile, s, v, None, now, now, rule, alert_rules)
        n += 1
    db.session.commit()
    return n
